"""EventBridge's PutEvents as AWS documents it, with every accepted entry recorded so scenarios
can read what the functions published (/_localcloud/published); and TestEventPattern, which
moto leaves unimplemented."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from moto.events import models as evm
from moto.events.responses import EventsHandler

if TYPE_CHECKING:
    from ..cloud import Cloud


# TestEventPattern's Event: "the following fields are mandatory: id, account, source, time,
# region, resources, detail-type" (API reference). EventPattern: "Maximum length of 4096".
TEST_EVENT_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")


def _test_event_pattern(self: EventsHandler) -> tuple[str, dict[str, Any]]:
    """TestEventPattern: whether the event matches the pattern (moto's EventBridge matching, the
    one delivery uses). An event without a mandatory field, or not JSON, is refused
    (ValidationException); an invalid or too long pattern is InvalidEventPatternException."""
    pattern, raw = self._get_param("EventPattern"), self._get_param("Event")
    try:
        event = json.loads(raw or "")
    except ValueError:
        return self.error("ValidationException", "Parameter Event is not valid JSON.")
    missing = [k for k in TEST_EVENT_FIELDS if not isinstance(event, dict) or k not in event]
    if missing:
        return self.error("ValidationException", f"Parameter Event is not valid: missing {', '.join(missing)}.")
    if len(pattern or "") > 4096:
        return self.error("InvalidEventPatternException", "Event pattern is longer than 4096 characters.")
    try:
        matched = evm.EventPattern.load(pattern).matches_event(event)
    except evm.InvalidEventPatternException as e:
        return self.error("InvalidEventPatternException", e.message)
    return json.dumps({"Result": bool(matched)}), self.response_headers


def install(cloud: Cloud) -> None:
    """Patches moto to behave as documented above, acting on `cloud` (once per process)."""
    EventsHandler.test_event_pattern = _test_event_pattern  # type: ignore[method-assign]
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
