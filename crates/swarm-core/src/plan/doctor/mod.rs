//! `swarm-lifecycle doctor`'s judgement (#35): a deployed stack's wiring, as read from AWS,
//! against what the stack says it should be. Each broken wire is one finding that names the
//! wire, what is wrong and the fix. Pure: the reads are the command's.

use std::collections::BTreeMap;

use serde::Serialize;

pub mod access;
mod policy;
mod stack;
pub use policy::allows_service;
pub use stack::{expected, wires, StackSeen, Wire, WIRES};

/// What the stack says: its parameters and the rules it declares.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub cluster: String,
    pub hosted_zone_id: String,
    pub dns_ttl: u64,
    pub hold_extra: u64,
    pub agent_wait: u64,
    pub join_budget: u64,
    /// Each rule of the stack and the function it must invoke (by name).
    pub rules: Vec<(String, String)>,
    /// Each function's execution role as the stack names it (the role's name), by function.
    pub roles: BTreeMap<String, String>,
    /// The cluster's parameters' prefix (ParameterPrefix) and its join tokens' parameters
    /// (worker, manager).
    pub parameter_prefix: String,
    pub token_parameters: Vec<String>,
    /// The cluster's token key as a parameter's KeyId may name it: its alias, id or ARN.
    pub token_key: Vec<String>,
    /// The alarm topic's ARN and its key's id (AlarmTopic, AlarmKey), when the stack lists them.
    pub alarm_topic: Option<String>,
    pub alarm_key: Option<String>,
}

/// An EventBridge rule as DescribeRule, ListTargetsByRule and TestEventPattern (with its
/// event fixtures) found it; None: not found.
#[derive(Debug, Clone, Default)]
pub struct RuleSeen {
    pub name: String,
    pub arn: String,
    pub enabled: bool,
    /// The ARNs of its targets.
    pub targets: Vec<String>,
    /// Fixtures of events/ its pattern should match and does not (TestEventPattern false).
    pub unmatched_fixtures: Vec<String>,
}

/// A function as GetFunctionConfiguration and GetPolicy found it.
#[derive(Debug, Clone, Default)]
pub struct FunctionSeen {
    pub name: String,
    pub arn: String,
    /// Its execution role's ARN.
    pub role: String,
    pub env: BTreeMap<String, String>,
    /// SourceArn of each statement that lets events.amazonaws.com invoke it.
    pub invoked_by: Vec<String>,
}

/// A lifecycle hook as DescribeLifecycleHooks found it.
#[derive(Debug, Clone, Default)]
pub struct HookSeen {
    pub group: String,
    pub name: String,
    /// `autoscaling:EC2_INSTANCE_LAUNCHING` or `…_TERMINATING`.
    pub transition: String,
    pub heartbeat_timeout: u64,
    pub default_result: String,
}

/// A queue events or failures land in (the failure queue, a rule's dead-letter queue).
#[derive(Debug, Clone, Default)]
pub struct QueueSeen {
    pub name: String,
    pub messages: u64,
    /// The oldest message's age among those read, when any were read.
    pub oldest_secs: Option<u64>,
    /// The newest message read, said (`failure_said`), when it says something.
    pub newest: Option<String>,
}

/// A join token's parameter as DescribeParameters found it (its value is never read).
#[derive(Debug, Clone, Default)]
pub struct TokenSeen {
    pub name: String,
    /// `SecureString`, `String`, `StringList`.
    pub kind: String,
    /// The KMS key of a SecureString, as Parameter Store names it.
    pub key_id: Option<String>,
}

/// The alarm topic as SNS's GetTopicAttributes found it.
#[derive(Debug, Clone, Default)]
pub struct AlarmTopicSeen {
    pub arn: String,
    /// Its access policy (JSON).
    pub policy: String,
    /// KmsMasterKeyId: the key's ARN, id or alias.
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Deployed {
    pub rules: Vec<Option<RuleSeen>>,
    pub functions: Vec<FunctionSeen>,
    pub hooks: Vec<HookSeen>,
    pub queues: Vec<QueueSeen>,
    /// The join tokens that exist (none before the first manager publishes them, and a
    /// missing one is published again by the next join that needs it).
    pub tokens: Vec<TokenSeen>,
    /// None: not found (or the stack lists none).
    pub alarm_topic: Option<AlarmTopicSeen>,
    /// What IAM's simulation said of the caller's calls (None: not asked).
    pub access: Option<access::AccessSeen>,
}

/// One broken wire: which, what is wrong, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub wire: String,
    pub broken: String,
    pub fix: String,
}

fn finding(wire: impl Into<String>, broken: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        wire: wire.into(),
        broken: broken.into(),
        fix: fix.into(),
    }
}

/// Every broken wire of `seen` against `want`; empty: all pass. In the order a reader follows
/// an event: its rule, its target's permission, the function's environment, the hooks, the
/// queues; then the join tokens, the alarm topic and the caller's own access.
pub fn diagnose(want: &Expected, seen: &Deployed) -> Vec<Finding> {
    let mut out = Vec::new();
    for ((rule_name, function_name), rule) in want.rules.iter().zip(&seen.rules) {
        let function = seen.functions.iter().find(|f| &f.name == function_name);
        out.extend(rule_findings(rule_name, rule.as_ref(), function));
    }
    for f in &seen.functions {
        out.extend(role_finding(want, f));
        out.extend(environment_findings(want, f));
    }
    for h in &seen.hooks {
        out.extend(hook_findings(want, h));
    }
    for q in seen.queues.iter().filter(|q| q.messages > 0) {
        let since = q
            .oldest_secs
            .map_or(String::new(), |s| format!(", the oldest read {s} s old"));
        let newest = q
            .newest
            .as_ref()
            .map_or(String::new(), |n| format!("; the newest read: {n}"));
        out.push(finding(
            format!("queue {}", q.name),
            format!("{} message(s) waiting{since}{newest}", q.messages),
            "read them (each is an event or an action the functions could not handle), fix the cause, then purge the queue",
        ));
    }
    for t in &seen.tokens {
        out.extend(token_findings(want, t));
    }
    out.extend(alarm_findings(want, seen.alarm_topic.as_ref()));
    out.extend(seen.access.iter().flat_map(access::findings));
    out
}

/// A failure queue's message said in one line: Lambda's invocation record (the function, why
/// it gave up, after how many attempts, the last error) or an event EventBridge could not
/// deliver (its detail type); None for anything else.
pub fn failure_said(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if let Some(ctx) = v.get("requestContext") {
        let arn = ctx["functionArn"].as_str().unwrap_or_default();
        // arn:…:function:NAME:$LATEST
        let function = arn.split(":function:").nth(1).and_then(|f| f.split(':').next());
        let mut said = format!(
            "{} {}",
            function.unwrap_or("a function"),
            ctx["condition"].as_str().unwrap_or("failed")
        );
        if let Some(n) = ctx["approximateInvokeCount"].as_u64() {
            said.push_str(&format!(" after {n} attempt(s)"));
        }
        if let Some(message) = v["responsePayload"]["errorMessage"].as_str() {
            let cut: String = message.chars().take(200).collect();
            said.push_str(&format!(": {cut}"));
        }
        return Some(said);
    }
    v["detail-type"]
        .as_str()
        .map(|t| format!("an undelivered event \"{t}\""))
}

/// CloudWatch must be able to publish to the alarm topic: its access policy allows it, and the
/// topic is encrypted with the stack's AlarmKey (whose policy lets CloudWatch use it).
/// Otherwise every alarm of the stack fires into nothing.
fn alarm_findings(want: &Expected, seen: Option<&AlarmTopicSeen>) -> Vec<Finding> {
    let Some(arn) = &want.alarm_topic else { return vec![] };
    let wire = format!("alarm topic {arn}");
    let Some(topic) = seen else {
        return vec![finding(wire, "not found", "update the stack: the topic is part of it")];
    };
    let mut out = Vec::new();
    if !allows_service(&topic.policy, "cloudwatch.amazonaws.com", "sns:Publish") {
        out.push(finding(
            &wire,
            "its access policy does not let cloudwatch.amazonaws.com sns:Publish: every alarm is silent",
            "update the stack (its AlarmTopicPolicy allows CloudWatch), or add that statement to the topic's policy",
        ));
    }
    if let Some(key) = &want.alarm_key {
        let named = topic.key_id.as_deref().unwrap_or("no key");
        if !(named == key || named.ends_with(&format!("/{key}"))) {
            out.push(finding(
                &wire,
                format!(
                    "encrypted with {named}, not the stack's AlarmKey ({key}), whose policy lets CloudWatch use it"
                ),
                "update the stack: the topic's KmsMasterKeyId was changed by hand",
            ));
        }
    }
    out
}

/// A join token must be a SecureString under the cluster's key: in plain text anyone who may
/// read the parameter joins the swarm; under another key the nodes' roles cannot decrypt it.
fn token_findings(want: &Expected, t: &TokenSeen) -> Option<Finding> {
    let delete = format!(
        "aws ssm delete-parameter --name {}: the next join publishes it again, encrypted with the cluster's key",
        t.name
    );
    let wire = format!("join token {}", t.name);
    if t.kind != "SecureString" {
        return Some(finding(wire, format!("stored as {}, not encrypted", t.kind), delete));
    }
    let key = t.key_id.as_deref().unwrap_or("the default key");
    // By alias, key id, or either's ARN.
    let ours = |k: &String| key == k || key.ends_with(&format!(":{k}")) || key.ends_with(&format!("/{k}"));
    (!want.token_key.iter().any(ours)).then(|| {
        finding(
            wire,
            format!(
                "encrypted with {key}, not the cluster's key ({})",
                want.token_key.join(" / ")
            ),
            delete,
        )
    })
}

fn rule_findings(name: &str, rule: Option<&RuleSeen>, function: Option<&FunctionSeen>) -> Vec<Finding> {
    let wire = format!("rule {name}");
    let Some(rule) = rule else {
        return vec![finding(wire, "not found", "update the stack: the rule is part of it")];
    };
    let mut out = Vec::new();
    if !rule.enabled {
        out.push(finding(
            &wire,
            "disabled: its events reach no function",
            format!("aws events enable-rule --name {name}"),
        ));
    }
    for fixture in &rule.unmatched_fixtures {
        out.push(finding(
            &wire,
            format!("its pattern does not match {fixture}"),
            "update the stack: the pattern was edited by hand",
        ));
    }
    let Some(function) = function else {
        out.push(finding(&wire, "its function is not found", "update the stack"));
        return out;
    };
    if !rule.targets.iter().any(|t| same_function(t, &function.arn)) {
        out.push(finding(
            &wire,
            format!("does not target {}", function.name),
            "update the stack: the rule's target was changed by hand",
        ));
    }
    if !function.invoked_by.iter().any(|a| a == &rule.arn) {
        out.push(finding(
            format!("function {}", function.name),
            format!("no permission lets rule {name} invoke it (events drop silently)"),
            "update the stack: its AWS::Lambda::Permission for this rule was removed",
        ));
    }
    out
}

/// A target names the function by ARN, perhaps with a version or alias.
fn same_function(target: &str, function_arn: &str) -> bool {
    target == function_arn
        || target
            .strip_prefix(function_arn)
            .is_some_and(|rest| rest.starts_with(':'))
}

/// A function must run as the stack's role for it: another role's grants are not the ones
/// `make lint` proved its calls against (too few: its calls are refused; too many: least
/// privilege is gone).
fn role_finding(want: &Expected, f: &FunctionSeen) -> Option<Finding> {
    let role = want.roles.get(&f.name)?;
    // role/NAME or role/PATH/NAME: the stack's physical id is the name.
    let name = f.role.rsplit('/').next().unwrap_or_default();
    (name != role).then(|| {
        let arn = match f.role.split_once(":role/") {
            Some((account, _)) => format!("{account}:role/{role}"),
            None => role.clone(),
        };
        finding(
            format!("function {}", f.name),
            format!("runs as {}, not the stack's role {role}", f.role),
            format!(
                "aws lambda update-function-configuration --function-name {} --role {arn} (or update the stack)",
                f.name
            ),
        )
    })
}

fn environment_findings(want: &Expected, f: &FunctionSeen) -> Vec<Finding> {
    let expect = [
        ("CLUSTER_NAME", want.cluster.clone()),
        ("HOSTED_ZONE_ID", want.hosted_zone_id.clone()),
        ("DNS_TTL_SECONDS", want.dns_ttl.to_string()),
    ];
    expect
        .into_iter()
        .filter(|(k, v)| f.env.get(*k) != Some(v))
        .map(|(k, v)| {
            let now = f.env.get(k).map_or("unset".to_string(), |s| format!("{s:?}"));
            finding(
                format!("function {}", f.name),
                format!("{k} is {now}, the stack says {v:?}"),
                "update the stack (a function's environment edited by hand is overwritten by the next update)",
            )
        })
        .collect()
}

fn hook_findings(want: &Expected, h: &HookSeen) -> Vec<Finding> {
    let wire = format!("hook {} of {}", h.name, h.group);
    let mut out = Vec::new();
    if h.transition.ends_with("TERMINATING") {
        let hold = want.dns_ttl + want.hold_extra;
        if h.heartbeat_timeout < hold {
            out.push(finding(
                &wire,
                format!(
                    "heartbeat timeout {} s is shorter than the record's TTL + HoldExtra ({hold} s): a manager is released while clients still resolve it",
                    h.heartbeat_timeout
                ),
                format!("set TerminateHookTimeout to {hold} and update the stack"),
            ));
        }
        if h.default_result != "CONTINUE" {
            out.push(finding(
                &wire,
                format!("default result {}", h.default_result),
                "CONTINUE: the hold ends by the timeout",
            ));
        }
    } else if h.transition.ends_with("LAUNCHING") {
        let launch = want.agent_wait + want.join_budget;
        if h.heartbeat_timeout < launch {
            out.push(finding(
                &wire,
                format!(
                    "heartbeat timeout {} s is shorter than AgentWait + JoinBudget ({launch} s): a slow join is abandoned by its timeout",
                    h.heartbeat_timeout
                ),
                format!("set LaunchHookTimeout to at least {launch} and update the stack"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FN_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:blue-terminate";
    const RULE_ARN: &str = "arn:aws:events:us-east-1:123456789012:rule/blue-terminate";
    const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:swarm-blue-alarms";
    const ALARMS_PUBLISH: &str = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":"sns:Publish"}]}"#;

    fn want() -> Expected {
        Expected {
            cluster: "blue".into(),
            hosted_zone_id: "Z1".into(),
            dns_ttl: 60,
            hold_extra: 120,
            agent_wait: 300,
            join_budget: 300,
            rules: vec![("blue-terminate".into(), "blue-terminate".into())],
            roles: [("blue-terminate".into(), "blue-LifecycleRole-9Z8Y".into())].into(),
            parameter_prefix: "/swarm".into(),
            token_parameters: vec!["/swarm/blue/join-token/worker".into()],
            token_key: vec!["alias/swarm-blue-tokens".into(), "1234abcd".into()],
            alarm_topic: Some(TOPIC_ARN.into()),
            alarm_key: Some("key-1".into()),
        }
    }

    const CALLER: &str = "arn:aws:sts::123456789012:assumed-role/blue-OperatorRole-1/me";

    fn healthy() -> Deployed {
        Deployed {
            rules: vec![Some(RuleSeen {
                name: "blue-terminate".into(),
                arn: RULE_ARN.into(),
                enabled: true,
                targets: vec![FN_ARN.into()],
                unmatched_fixtures: vec![],
            })],
            functions: vec![FunctionSeen {
                name: "blue-terminate".into(),
                arn: FN_ARN.into(),
                role: "arn:aws:iam::123456789012:role/blue-LifecycleRole-9Z8Y".into(),
                env: [
                    ("CLUSTER_NAME", "blue"),
                    ("HOSTED_ZONE_ID", "Z1"),
                    ("DNS_TTL_SECONDS", "60"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                invoked_by: vec![RULE_ARN.into()],
            }],
            hooks: vec![
                HookSeen {
                    group: "blue-managers".into(),
                    name: "terminate".into(),
                    transition: "autoscaling:EC2_INSTANCE_TERMINATING".into(),
                    heartbeat_timeout: 180,
                    default_result: "CONTINUE".into(),
                },
                HookSeen {
                    group: "blue-managers".into(),
                    name: "launch".into(),
                    transition: "autoscaling:EC2_INSTANCE_LAUNCHING".into(),
                    heartbeat_timeout: 600,
                    default_result: "ABANDON".into(),
                },
            ],
            queues: vec![QueueSeen {
                name: "blue-failures".into(),
                messages: 0,
                oldest_secs: None,
                newest: None,
            }],
            tokens: vec![TokenSeen {
                name: "/swarm/blue/join-token/worker".into(),
                kind: "SecureString".into(),
                key_id: Some("alias/swarm-blue-tokens".into()),
            }],
            alarm_topic: Some(AlarmTopicSeen {
                arn: TOPIC_ARN.into(),
                policy: ALARMS_PUBLISH.into(),
                key_id: Some("arn:aws:kms:us-east-1:123456789012:key/key-1".into()),
            }),
            access: Some(access::AccessSeen {
                caller: CALLER.into(),
                ..Default::default()
            }),
        }
    }

    /// A way to break a healthy stack.
    type Break = Box<dyn Fn(&mut Deployed)>;

    fn wires(f: &[Finding]) -> Vec<(&str, &str)> {
        f.iter().map(|f| (f.wire.as_str(), f.broken.as_str())).collect()
    }

    #[test]
    fn a_failure_queue_s_message_is_said_in_one_line() {
        let record = r#"{"version":"1.0","requestContext":{"requestId":"r1","functionArn":"arn:aws:lambda:us-east-1:1:function:swarm-blue-terminate-hook:$LATEST","condition":"RetriesExhausted","approximateInvokeCount":3},"requestPayload":{},"responseContext":{"statusCode":200,"functionError":"Unhandled"},"responsePayload":{"errorType":"Error","errorMessage":"throttled"}}"#;
        assert_eq!(
            failure_said(record).unwrap(),
            "swarm-blue-terminate-hook RetriesExhausted after 3 attempt(s): throttled"
        );
        let aged = r#"{"requestContext":{"functionArn":"arn:aws:lambda:us-east-1:1:function:f:$LATEST","condition":"EventAgeExceeded","approximateInvokeCount":0}}"#;
        assert_eq!(failure_said(aged).unwrap(), "f EventAgeExceeded after 0 attempt(s)");
        let event = r#"{"detail-type":"EC2 Instance-terminate Lifecycle Action","detail":{}}"#;
        assert_eq!(
            failure_said(event).unwrap(),
            "an undelivered event \"EC2 Instance-terminate Lifecycle Action\""
        );
        assert_eq!(failure_said("not json"), None);
        assert_eq!(failure_said(r#"{"action":{}}"#), None);
        // Said in the queue's finding, with the oldest's age.
        let mut d = healthy();
        d.queues[0].messages = 2;
        d.queues[0].oldest_secs = Some(40);
        d.queues[0].newest = failure_said(record);
        let found = diagnose(&want(), &d);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].broken,
            "2 message(s) waiting, the oldest read 40 s old; the newest read: swarm-blue-terminate-hook RetriesExhausted after 3 attempt(s): throttled"
        );
    }

    #[test]
    fn a_healthy_stack_has_no_finding() {
        assert_eq!(diagnose(&want(), &healthy()), vec![]);
        // No token yet (no manager has published them) and the key named by its id: healthy.
        let mut d = healthy();
        d.tokens[0].key_id = Some("1234abcd".into());
        assert_eq!(diagnose(&want(), &d), vec![]);
        d.tokens[0].key_id = Some("arn:aws:kms:us-east-1:1:key/1234abcd".into());
        assert_eq!(diagnose(&want(), &d), vec![]);
        d.tokens.clear();
        assert_eq!(diagnose(&want(), &d), vec![]);
    }

    #[test]
    fn each_broken_wire_is_named_once_with_its_fix() {
        let cases: Vec<(&str, Break, &str)> = vec![
            (
                "rule blue-terminate",
                Box::new(|d| d.rules[0].as_mut().unwrap().enabled = false),
                "disabled",
            ),
            ("rule blue-terminate", Box::new(|d| d.rules[0] = None), "not found"),
            (
                "rule blue-terminate",
                Box::new(|d| d.rules[0].as_mut().unwrap().unmatched_fixtures = vec!["lifecycle-terminate.json".into()]),
                "does not match lifecycle-terminate.json",
            ),
            (
                "rule blue-terminate",
                Box::new(|d| d.rules[0].as_mut().unwrap().targets.clear()),
                "does not target",
            ),
            (
                "function blue-terminate",
                Box::new(|d| d.functions[0].invoked_by.clear()),
                "no permission",
            ),
            (
                "function blue-terminate",
                Box::new(|d| d.functions[0].role = "arn:aws:iam::123456789012:role/blue-ReconcileRole-1".into()),
                "runs as arn:aws:iam::123456789012:role/blue-ReconcileRole-1, not the stack's role blue-LifecycleRole-9Z8Y",
            ),
            (
                "function blue-terminate",
                Box::new(|d| {
                    d.functions[0].env.insert("CLUSTER_NAME".into(), "green".into());
                }),
                "CLUSTER_NAME is \"green\"",
            ),
            (
                "hook terminate of blue-managers",
                Box::new(|d| d.hooks[0].heartbeat_timeout = 90),
                "shorter than the record's TTL + HoldExtra (180 s)",
            ),
            (
                "hook launch of blue-managers",
                Box::new(|d| d.hooks[1].heartbeat_timeout = 120),
                "shorter than AgentWait + JoinBudget (600 s)",
            ),
            (
                "queue blue-failures",
                Box::new(|d| {
                    d.queues[0].messages = 2;
                    d.queues[0].oldest_secs = Some(3600);
                }),
                "2 message(s) waiting, the oldest read 3600 s old",
            ),
            (
                "join token /swarm/blue/join-token/worker",
                Box::new(|d| d.tokens[0].kind = "String".into()),
                "stored as String, not encrypted",
            ),
            (
                "join token /swarm/blue/join-token/worker",
                Box::new(|d| d.tokens[0].key_id = Some("alias/aws/ssm".into())),
                "encrypted with alias/aws/ssm, not the cluster's key",
            ),
            (
                "alarm topic arn:aws:sns:us-east-1:123456789012:swarm-blue-alarms",
                Box::new(|d| {
                    d.alarm_topic.as_mut().unwrap().policy = ALARMS_PUBLISH.replace("cloudwatch", "events");
                }),
                "does not let cloudwatch.amazonaws.com sns:Publish",
            ),
            (
                "alarm topic arn:aws:sns:us-east-1:123456789012:swarm-blue-alarms",
                Box::new(|d| d.alarm_topic.as_mut().unwrap().key_id = Some("alias/aws/sns".into())),
                "encrypted with alias/aws/sns, not the stack's AlarmKey (key-1)",
            ),
            (
                "alarm topic arn:aws:sns:us-east-1:123456789012:swarm-blue-alarms",
                Box::new(|d| d.alarm_topic = None),
                "not found",
            ),
            (
                "your credentials (arn:aws:sts::123456789012:assumed-role/blue-OperatorRole-1/me)",
                Box::new(|d| {
                    d.access.as_mut().unwrap().refused.push(access::Refused {
                        action: "ssm:SendCommand".into(),
                        resource: "arn:aws:ec2:us-east-1:123456789012:instance/*".into(),
                        decision: "explicitDeny".into(),
                    })
                }),
                "may not call ssm:SendCommand on arn:aws:ec2:us-east-1:123456789012:instance/* (explicitDeny)",
            ),
            (
                "your credentials (arn:aws:sts::123456789012:assumed-role/blue-OperatorRole-1/me)",
                Box::new(|d| d.access.as_mut().unwrap().unchecked = Some("AccessDenied".into())),
                "cannot be checked: AccessDenied",
            ),
        ];
        for (wire, break_it, says) in cases {
            let mut d = healthy();
            break_it(&mut d);
            let found = diagnose(&want(), &d);
            assert_eq!(found.len(), 1, "{wire}: {:?}", wires(&found));
            assert_eq!(found[0].wire, wire);
            assert!(found[0].broken.contains(says), "{wire}: {:?}", found[0]);
            assert!(!found[0].fix.is_empty());
        }
    }

    #[test]
    fn a_target_with_a_version_or_alias_is_the_function() {
        assert!(same_function(&format!("{FN_ARN}:live"), FN_ARN));
        assert!(!same_function(&format!("{FN_ARN}-other"), FN_ARN));
    }
}
