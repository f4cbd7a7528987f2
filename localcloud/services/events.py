"""EventBridge's PutEvents as AWS documents it, with every accepted entry recorded so scenarios
can read what the functions published (/_localcloud/published)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from moto.events import models as evm

if TYPE_CHECKING:
    from ..cloud import Cloud


def install(cloud: Cloud) -> None:
    """Patches moto to behave as documented above, acting on `cloud` (once per process)."""
    _orig_put_events = evm.EventsBackend.put_events

    def _put_events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # "Source ... Pattern: ^(?=[/\.\-_A-Za-z0-9]+)((?!aws\.).*)": no custom event may claim
        # an AWS service's source; PutEvents refuses that entry (NotAuthorizedForSourceException)
        # and takes the others.
        refused = {i for i, e in enumerate(events) if str(e.get("Source", "")).startswith("aws.")}
        taken = [e for i, e in enumerate(events) if i not in refused]
        answers = iter(_orig_put_events(self, taken)) if taken else iter(())
        out = []
        for i, e in enumerate(events):
            if i in refused:
                out.append({"ErrorCode": "NotAuthorizedForSourceException",
                            "ErrorMessage": "Not authorized for the source."})
                continue
            a = next(answers)
            out.append(a)
            if "EventId" in a:
                try:
                    detail = json.loads(e.get("Detail") or "{}")
                except ValueError:
                    detail = None
                cloud.published.append({"t": time.time(), "id": a["EventId"], "bus": e.get("EventBusName") or "default",
                                        "source": e.get("Source"), "detail-type": e.get("DetailType"),
                                        "detail": detail})
                cloud.record("event-published", source=e.get("Source"), detail_type=e.get("DetailType"),
                             instance=(detail or {}).get("instanceId"))
                if (e.get("EventBusName") or "default") == "default" and isinstance(detail, dict):
                    cloud.forward_action_event(str(detail.get("cluster", "")), str(e.get("DetailType")))
        return out

    evm.EventsBackend.put_events = _put_events
