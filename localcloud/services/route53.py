"""Route 53 as AWS documents it: a change is PENDING, then INSYNC; a DELETE must carry the
record's current values; a listing is in Route 53's order (the reversed name, trailing dot)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from moto.core.responses import ActionResult
from moto.route53 import models as r53m
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
        # "A request cannot contain more than 1,000 ResourceRecord elements. When the value of
        # the Action element is UPSERT, each ResourceRecord element is counted twice" (likewise
        # the 32,000 characters of the Value elements), Route 53 quotas.
        records = chars = 0
        for c in self._get_param("ChangeBatch.Changes") or []:
            twice = 2 if c["Action"] == "UPSERT" else 1
            values = [r if isinstance(r, str) else r.get("Value") or "" for r in c["ResourceRecordSet"].get("ResourceRecords") or []]
            records += twice * len(values)
            chars += twice * sum(len(v) for v in values)
        if records > 1000 or chars > 32000:
            raise AwsError("InvalidChangeBatch", f"the batch has {records} ResourceRecord elements and {chars} "
                                                 "characters of values (at most 1,000 and 32,000; an UPSERT counts twice)")
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

    def _record_sets(self, start_type: str, start_name: str) -> list:
        # "ListResourceRecordSets sorts results first by DNS name with the labels reversed, for
        # example: com.example.www. Note the trailing dot, which can change the sort order when
        # the record name contains characters that appear before . (decimal 46)" (API
        # reference). moto sorts without the dot: `apps-x` came after `apps` and before its
        # subdomains.
        key = lambda r: (listing_key(r.name), r.type)  # noqa: E731
        sets = sorted(self.rrsets, key=key)
        if start_name:
            start = (listing_key(start_name), start_type or "")
            sets = [r for r in sets if key(r) >= start]
        return sets

    r53m.FakeZone.get_record_sets = _record_sets
    r53r.Route53.change_resource_record_sets = _change_rrsets
    r53r.Route53.get_change = _get_change


def listing_key(name: str) -> str:
    """A name as Route 53 sorts its listing: labels reversed, with the trailing dot."""
    return ".".join(reversed(name.rstrip(".").lower().split("."))) + "."
