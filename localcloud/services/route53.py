"""Route 53 as AWS documents it: a change is PENDING, then INSYNC; a DELETE must carry the
record's current values."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from moto.core.responses import ActionResult
from moto.route53 import responses as r53r

from ..cloud import AwsError, utc

if TYPE_CHECKING:
    from ..cloud import Cloud


def install(cloud: Cloud) -> None:
    """Patches moto to behave as documented above, acting on `cloud` (once per process)."""
    _orig_change_rrsets = r53r.Route53.change_resource_record_sets

    def _change_rrsets(self):
        if cloud.take_fault("route53_prior_request"):
            raise AwsError("PriorRequestNotComplete",
                                   "The request was rejected because Route 53 was still processing a prior request.")
        if cloud.take_fault("route53_throttle"):
            raise AwsError("Throttling", "Rate exceeded")
        zoneid = self._get_param("HostedZoneId")
        zone = self.backend.get_hosted_zone(zoneid)
        for c in self._get_param("ChangeBatch.Changes") or []:
            rs = c["ResourceRecordSet"]
            if c["Action"] == "DELETE":
                # "To delete a resource record set, you must specify all the same values that you
                # specified when you created it" (ChangeResourceRecordSets, API reference).
                name = rs["Name"].rstrip(".").lower()
                found = next((r for r in zone.rrsets if r.name.rstrip(".").lower() == name and r.type == rs["Type"]
                              and r.set_identifier == rs.get("SetIdentifier")), None)
                what = (f"[name='{rs['Name']}', type='{rs['Type']}', set-identifier='{rs.get('SetIdentifier')}']")
                if found is None:
                    raise AwsError("InvalidChangeBatch", f"Tried to delete resource record set {what} but it was not found")
                values = lambda rrs: sorted(r if isinstance(r, str) else r.get("Value") for r in rrs or [])  # noqa: E731
                if int(found.ttl or 0) != int(rs.get("TTL") or 0) or values(found.records) != values(rs.get("ResourceRecords")):
                    raise AwsError("InvalidChangeBatch", f"Tried to delete resource record set {what} but the values "
                                                         "provided do not match the current values")
        result = _orig_change_rrsets(self)
        cid = "/change/C" + uuid.uuid4().hex[:12].upper()
        now = time.time()
        cloud.changes[cid] = now
        result = ActionResult({**result.result, "ChangeInfo": {"Id": cid, "Status": "PENDING", "SubmittedAt": utc(now)}})
        cloud.record("dns-change", change=cid, changes=[
            {"action": c["Action"], "set": c["ResourceRecordSet"].get("SetIdentifier"),
             "ips": [r if isinstance(r, str) else r.get("Value") for r in c["ResourceRecordSet"].get("ResourceRecords", [])]}
            for c in self._get_param("ChangeBatch.Changes") or []], insync_at=round(now + cloud.propagation - cloud.t0, 3))
        return result

    def _get_change(self):
        cid = self._get_param("Id")
        key = cid if cid.startswith("/change/") else f"/change/{cid}"
        submitted = cloud.changes.get(key)
        if submitted is None:
            raise AwsError("NoSuchChange", f"A change with the specified change ID does not exist: {cid}")
        status = "INSYNC" if time.time() >= submitted + cloud.propagation else "PENDING"
        return ActionResult({"ChangeInfo": {"Id": key, "Status": status, "SubmittedAt": utc(submitted)}})

    r53r.Route53.change_resource_record_sets = _change_rrsets
    r53r.Route53.get_change = _get_change
