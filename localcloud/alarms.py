"""The alarm topic's deliveries, as the template's policies decide them. The topic is encrypted
with AlarmKey; two AWS services publish to it on the account's behalf:
- CloudWatch, when an alarm fires (here: FailedInvocationsAlarm, once an event of the
  deployment's functions reaches the on-failure destination);
- EventBridge, for the action events the ActionEventsRule forwards (ActionEventsToAlarms).
SNS takes a service's publish only if the topic's access policy allows it (a topic policy
replaces the default one, which lets the owner account's principals publish) and, for an
encrypted topic, the key policy lets that service use the key ("Enable compatibility between
event sources from AWS services and encrypted topics": kms:GenerateDataKey* and kms:Decrypt for
the service principal, SNS developer guide, key management). EventBridge's KMS request carries
no aws:SourceAccount or aws:SourceArn ("not supported for EventBridge-to-encrypted topics");
CloudWatch's does. A refused delivery is recorded and nothing reaches anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .iam import Renderer, _as_list, alarm_topic_arn, load_template, statement_matches

CLOUDWATCH = "cloudwatch.amazonaws.com"
EVENTBRIDGE = "events.amazonaws.com"


@dataclass
class AlarmTopic:
    arn: str
    account: str
    topic_policy: dict[str, Any] | None  # the stack's (None: SNS's default policy)
    key_policy: dict[str, Any]  # the stack's
    forwarded: list[str]  # the detail-types ActionEventsRule forwards
    rule_arn: str
    alarm_arn: str
    key_id: str = ""  # its key in moto's KMS, once created

    def deliver(self, service: str, source_arn: str, topic_policy: dict[str, Any],
                key_policy: dict[str, Any] | None) -> tuple[bool, str]:
        """Whether SNS takes `service`'s publish on behalf of `source_arn` under the policies SNS
        and KMS hold now, and why not. SNS's default policy names the owner account as
        AWS:SourceOwner: a service publishing on the account's behalf is that owner."""
        context = {"aws:SourceAccount": self.account, "aws:SourceArn": source_arn, "aws:SourceOwner": self.account}
        if not _allows(topic_policy, service, "sns:Publish", self.arn, context):
            return False, f"the topic policy does not allow {service} sns:Publish"
        if key_policy is None:
            return False, "the topic's key does not exist"
        key_context = {} if service == EVENTBRIDGE else context
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            if not _allows(key_policy, service, action, "*", key_context):
                return False, f"the key policy does not allow {service} {action}"
        return True, "delivered"


def _allows(policy: dict[str, Any], service: str, action: str, resource: str, context: dict[str, Any]) -> bool:
    """A resource policy's answer for an AWS service principal (an explicit deny wins)."""
    allowed = False
    for st in _as_list(policy.get("Statement", [])):
        principal = st.get("Principal") or {}
        services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
        anyone = principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS", [])))
        if service not in services and not anyone:
            continue
        if statement_matches(st, action, resource, context):
            if st["Effect"] == "Deny":
                return False
            allowed = True
    return allowed


def render_topic(template_path: Path, params: dict[str, str], region: str, account: str) -> AlarmTopic:
    t = load_template(template_path)
    cluster = params.get("ClusterName", "swarm")
    arn = alarm_topic_arn(region, account, cluster)
    rule_arn = f"arn:aws:events:{region}:{account}:rule/swarm-{cluster}-action-events"
    r = Renderer(t, params, region, account, physical={"AlarmTopic": arn}, attributes={"ActionEventsRule.Arn": rule_arn})
    res = t["Resources"]
    policy_res = res.get("AlarmTopicPolicy")
    topic_policy = None
    if policy_res and (not policy_res.get("Condition") or r.condition(policy_res["Condition"])):
        topic_policy = r.resolve(policy_res["Properties"]["PolicyDocument"])
    forwarded = [d for d in str(r.params.get("ActionEventsToAlarms", "")).split(",") if d.strip()]
    return AlarmTopic(arn=arn, account=account, topic_policy=topic_policy,
                      key_policy=r.resolve(res["AlarmKey"]["Properties"]["KeyPolicy"]),
                      forwarded=[d.strip() for d in forwarded], rule_arn=rule_arn,
                      alarm_arn=f"arn:aws:cloudwatch:{region}:{account}:alarm:swarm-{cluster}-failed-invocations")
