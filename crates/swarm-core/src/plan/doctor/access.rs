//! Whether the operator's own credentials can run the operator's command: every AWS action the
//! command calls, on the resources and with the condition keys the stack gives it, asked of IAM's
//! policy simulation (SimulatePrincipalPolicy) for the caller's principal. Pure: which calls to
//! simulate, and the findings from IAM's answers.

use super::{finding, Expected, Finding, StackSeen};

/// Where an action of the command lands, as its grant in the template's OperatorRole scopes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// No resource type: `*` only.
    Any,
    Stack,
    Rules,
    Functions,
    Queues,
    FailureQueues,
    AlarmTopic,
    /// The hosted zone, read.
    Zone,
    /// The manager record changed (its name and type are the grant's condition keys).
    ManagerRecord,
    Change,
    /// The cluster's groups (their `swarm:cluster` tag is the grant's condition key).
    Groups,
    /// AWS-RunShellScript on the cluster's instances (their `swarm:cluster` tag).
    RunShellScript,
    InitLock,
}

/// Every action the command calls, the commands that call it, and where: the operator's-own
/// ones (`events:PutEvents` with ACTION_EVENT_BUS, `ssm:DeleteParameters`) left out, as the
/// template's OperatorRole leaves them out. `make lint` (scripts/reachable-actions.py) checks
/// this list against what the command's binary can call, both ways.
pub const OPERATOR_CALLS: &[(&str, &str, Scope)] = &[
    (
        "autoscaling:DescribeAutoScalingGroups",
        "status, plan, reconcile, tidy, retire",
        Scope::Any,
    ),
    (
        "ec2:DescribeInstances",
        "status, plan, reconcile, tidy, retire",
        Scope::Any,
    ),
    (
        "ec2:DescribeInstanceStatus",
        "status, plan, reconcile, tidy, retire",
        Scope::Any,
    ),
    (
        "ssm:DescribeInstanceInformation",
        "status, plan, reconcile, tidy, retire",
        Scope::Any,
    ),
    (
        "ssm:GetCommandInvocation",
        "status, plan, reconcile, tidy, retire",
        Scope::Any,
    ),
    (
        "ssm:ListCommandInvocations",
        "status, plan, reconcile, tidy, retire",
        Scope::Any,
    ),
    (
        "ssm:SendCommand",
        "status, plan, reconcile, tidy, retire",
        Scope::RunShellScript,
    ),
    (
        "route53:ListResourceRecordSets",
        "status, plan, reconcile, tidy",
        Scope::Zone,
    ),
    (
        "autoscaling:DescribeLifecycleHooks",
        "reconcile, tidy, doctor",
        Scope::Any,
    ),
    ("autoscaling:CompleteLifecycleAction", "reconcile, tidy", Scope::Groups),
    ("autoscaling:RecordLifecycleActionHeartbeat", "reconcile", Scope::Groups),
    ("ssm:PutParameter", "reconcile", Scope::InitLock),
    ("ssm:GetParametersByPath", "reconcile", Scope::InitLock),
    (
        "route53:ChangeResourceRecordSets",
        "reconcile, tidy",
        Scope::ManagerRecord,
    ),
    ("route53:GetChange", "reconcile, tidy", Scope::Change),
    (
        "autoscaling:TerminateInstanceInAutoScalingGroup",
        "retire",
        Scope::Groups,
    ),
    ("cloudformation:DescribeStacks", "doctor", Scope::Stack),
    ("cloudformation:DescribeStackResources", "doctor", Scope::Stack),
    ("events:DescribeRule", "doctor", Scope::Rules),
    ("events:ListTargetsByRule", "doctor", Scope::Rules),
    ("events:TestEventPattern", "doctor", Scope::Any),
    ("lambda:GetFunctionConfiguration", "doctor", Scope::Functions),
    ("lambda:GetPolicy", "doctor", Scope::Functions),
    ("sqs:GetQueueAttributes", "doctor", Scope::Queues),
    ("sqs:ReceiveMessage", "doctor", Scope::FailureQueues),
    ("sns:GetTopicAttributes", "doctor", Scope::AlarmTopic),
    ("ssm:DescribeParameters", "doctor", Scope::Any),
];

/// What the stack says about where the command's calls land.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub cluster: String,
    pub stack_id: String,
    pub zone_id: String,
    pub manager_record: String,
    pub parameter_prefix: String,
    pub groups: Vec<String>,
    /// Rules and functions by name; queues by URL; the failure queues the doctor reads, by URL.
    pub rules: Vec<String>,
    pub functions: Vec<String>,
    pub queues: Vec<String>,
    pub failure_queues: Vec<String>,
    pub alarm_topic: Option<String>,
}

impl Facts {
    /// From the stack as CloudFormation describes it, the caller (GetCallerIdentity's ARN and
    /// account) and the region; `queues` and `failure_queues` by logical id.
    pub fn of(s: &StackSeen, want: &Expected, caller: (&str, &str), region: &str, queues: (&[&str], &[&str])) -> Facts {
        let param = |k: &str| s.params.get(k).cloned().unwrap_or_default();
        let urls = |ids: &[&str]| ids.iter().filter_map(|q| s.resources.get(*q).cloned()).collect();
        let mut functions: Vec<String> = want.rules.iter().map(|(_, f)| f.clone()).collect();
        functions.dedup();
        Facts {
            partition: caller.0.split(':').nth(1).unwrap_or("aws").to_string(),
            region: region.into(),
            account: caller.1.into(),
            cluster: want.cluster.clone(),
            stack_id: s.id.clone(),
            // With CreateZone the stack's own zone (its physical id), else the parameter's.
            zone_id: s
                .resources
                .get("Zone")
                .map(|z| z.trim_start_matches("/hostedzone/").to_string())
                .unwrap_or_else(|| want.hosted_zone_id.clone()),
            manager_record: param("ManagerRecordName"),
            parameter_prefix: want.parameter_prefix.clone(),
            groups: ["ManagerGroup", "WorkerGroup"]
                .iter()
                .filter_map(|g| s.resources.get(*g).cloned())
                .collect(),
            rules: want.rules.iter().map(|(r, _)| r.clone()).collect(),
            functions,
            queues: urls(queues.0),
            failure_queues: urls(queues.1),
            alarm_topic: want.alarm_topic.clone(),
        }
    }
}

/// What IAM said of the caller's calls.
#[derive(Debug, Clone, Default)]
pub struct AccessSeen {
    /// GetCallerIdentity's ARN.
    pub caller: String,
    pub refused: Vec<Refused>,
    /// Why the simulation could not be made, when it could not.
    pub unchecked: Option<String>,
}

/// The findings of what IAM said.
pub fn findings(a: &AccessSeen) -> Vec<Finding> {
    match &a.unchecked {
        Some(why) => vec![unchecked(&a.caller, why)],
        None => access_findings(&a.caller, &a.refused),
    }
}

/// A condition key and its value(s), as SimulatePrincipalPolicy's ContextEntries take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextKey {
    pub name: String,
    /// `string` or `stringList`.
    pub kind: &'static str,
    pub values: Vec<String>,
}

/// One simulation: actions on one resource in one context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulation {
    pub actions: Vec<String>,
    pub resource: String,
    pub context: Vec<ContextKey>,
}

/// The cluster's tag as a grant's condition key names it (`autoscaling:ResourceTag/…`,
/// `ssm:resourceTag/…`).
fn tag(key: &str, cluster: &str) -> ContextKey {
    ContextKey {
        name: format!("{key}/swarm:cluster"),
        kind: "string",
        values: vec![cluster.to_string()],
    }
}

/// `https://sqs.<region>.amazonaws.com/<account>/<name>` → the queue's ARN.
fn queue_arn(f: &Facts, url: &str) -> String {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let (name, account) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    format!("arn:{}:sqs:{}:{account}:{name}", f.partition, f.region)
}

/// The resources (each with its context) a scope's calls land on.
fn resources(f: &Facts, scope: Scope) -> Vec<(String, Vec<ContextKey>)> {
    let (p, r, a) = (&f.partition, &f.region, &f.account);
    let plain = |arns: Vec<String>| arns.into_iter().map(|arn| (arn, vec![])).collect();
    match scope {
        Scope::Any => plain(vec!["*".into()]),
        Scope::Stack => plain(vec![f.stack_id.clone()]),
        Scope::Rules => plain(
            f.rules
                .iter()
                .map(|n| format!("arn:{p}:events:{r}:{a}:rule/{n}"))
                .collect(),
        ),
        Scope::Functions => plain(
            f.functions
                .iter()
                .map(|n| format!("arn:{p}:lambda:{r}:{a}:function:{n}"))
                .collect(),
        ),
        Scope::Queues => plain(f.queues.iter().map(|u| queue_arn(f, u)).collect()),
        Scope::FailureQueues => plain(f.failure_queues.iter().map(|u| queue_arn(f, u)).collect()),
        Scope::AlarmTopic => plain(f.alarm_topic.iter().cloned().collect()),
        Scope::Zone => plain(vec![format!("arn:{p}:route53:::hostedzone/{}", f.zone_id)]),
        Scope::ManagerRecord => {
            let list = |name: &str, v: &str| ContextKey {
                name: name.into(),
                kind: "stringList",
                values: vec![v.to_string()],
            };
            let record = f.manager_record.trim_end_matches('.').to_ascii_lowercase();
            vec![(
                format!("arn:{p}:route53:::hostedzone/{}", f.zone_id),
                vec![
                    list("route53:ChangeResourceRecordSetsNormalizedRecordNames", &record),
                    list("route53:ChangeResourceRecordSetsRecordTypes", "A"),
                ],
            )]
        }
        // A change's id is Route 53's; any one stands for all.
        Scope::Change => plain(vec![format!("arn:{p}:route53:::change/C0000000000000")]),
        Scope::Groups => f
            .groups
            .iter()
            .map(|g| {
                (
                    format!("arn:{p}:autoscaling:{r}:{a}:autoScalingGroup:*:autoScalingGroupName/{g}"),
                    vec![tag("autoscaling:ResourceTag", &f.cluster)],
                )
            })
            .collect(),
        Scope::RunShellScript => vec![
            (format!("arn:{p}:ssm:{r}::document/AWS-RunShellScript"), vec![]),
            (
                format!("arn:{p}:ec2:{r}:{a}:instance/*"),
                vec![tag("ssm:resourceTag", &f.cluster)],
            ),
        ],
        Scope::InitLock => plain(vec![format!(
            "arn:{p}:ssm:{r}:{a}:parameter{}/{}/init-lock",
            f.parameter_prefix, f.cluster
        )]),
    }
}

/// The simulations that cover every call of the command: one per resource and context, with
/// every action landing there.
pub fn simulations(f: &Facts) -> Vec<Simulation> {
    let mut out: Vec<Simulation> = Vec::new();
    for (action, _, scope) in OPERATOR_CALLS {
        for (resource, context) in resources(f, *scope) {
            match out.iter_mut().find(|s| s.resource == resource && s.context == context) {
                Some(s) => s.actions.push(action.to_string()),
                None => out.push(Simulation {
                    actions: vec![action.to_string()],
                    resource,
                    context,
                }),
            }
        }
    }
    out
}

/// Whose policies a caller's calls are decided by, from GetCallerIdentity's ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user's or a role's ARN, which SimulatePrincipalPolicy takes.
    Simulated(String),
    /// The account's root user: no policy limits it.
    Root,
    /// A federated user's session: IAM cannot simulate it.
    NotSimulated(String),
}

/// `assumed-role/NAME/SESSION` is the role `role/NAME`. (A role with a path is named without
/// it in the session's ARN: IAM then answers NoSuchEntity, said as such.)
pub fn principal_of(caller: &str) -> Principal {
    let mut parts = caller.splitn(6, ':');
    let (partition, account, resource) = (parts.nth(1), parts.nth(2), parts.next());
    let (Some(partition), Some(account), Some(resource)) = (partition, account, resource) else {
        return Principal::NotSimulated(caller.into());
    };
    if resource == "root" {
        return Principal::Root;
    }
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        let role = rest.split('/').next().unwrap_or_default();
        return Principal::Simulated(format!("arn:{partition}:iam::{account}:role/{role}"));
    }
    if resource.starts_with("user/") {
        return Principal::Simulated(caller.into());
    }
    Principal::NotSimulated(caller.into())
}

/// One of IAM's answers that is not `allowed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub action: String,
    pub resource: String,
    /// `implicitDeny` or `explicitDeny`.
    pub decision: String,
}

/// The command's calls the caller may not make, one finding per action (its resources listed).
pub fn access_findings(caller: &str, refused: &[Refused]) -> Vec<Finding> {
    let wire = format!("your credentials ({caller})");
    let fix = "run the command as the stack's OperatorRole (output OperatorRoleArn; a profile with role_arn); \
               if you are, its policy was changed: aws cloudformation detect-stack-drift, then update the stack";
    let mut out = Vec::new();
    for (action, commands, _) in OPERATOR_CALLS {
        let on: Vec<&Refused> = refused.iter().filter(|r| r.action == *action).collect();
        let Some(first) = on.first() else { continue };
        let resources: Vec<&str> = on.iter().map(|r| r.resource.as_str()).collect();
        out.push(finding(
            &wire,
            format!(
                "may not call {action} on {} ({}): `{commands}` will be refused",
                resources.join(", "),
                first.decision
            ),
            fix,
        ));
    }
    out
}

/// The check itself could not be made (no permission to simulate, a principal IAM does not
/// simulate): said, with what to do.
fn unchecked(caller: &str, why: &str) -> Finding {
    finding(
        format!("your credentials ({caller})"),
        format!("what they may call cannot be checked: {why}"),
        "run the command as the stack's OperatorRole (output OperatorRoleArn), which may simulate its own policies",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "111122223333".into(),
            cluster: "blue".into(),
            stack_id: "arn:aws:cloudformation:eu-west-1:111122223333:stack/blue/abc".into(),
            zone_id: "Z1".into(),
            manager_record: "Managers.Example.com.".into(),
            parameter_prefix: "/swarm".into(),
            groups: vec!["blue-managers".into(), "blue-workers".into()],
            rules: vec!["blue-LaunchRule-1".into()],
            functions: vec!["swarm-blue-launch-hook".into()],
            queues: vec!["https://sqs.eu-west-1.amazonaws.com/111122223333/swarm-blue-failed".into()],
            failure_queues: vec!["https://sqs.eu-west-1.amazonaws.com/111122223333/swarm-blue-failed".into()],
            alarm_topic: Some("arn:aws:sns:eu-west-1:111122223333:swarm-blue-alarms".into()),
        }
    }

    #[test]
    fn every_call_is_simulated_once_on_each_resource_it_lands_on() {
        let sims = simulations(&facts());
        for (action, _, scope) in OPERATOR_CALLS {
            let n = sims.iter().filter(|s| s.actions.iter().any(|a| a == action)).count();
            assert_eq!(n, resources(&facts(), *scope).len(), "{action}");
        }
        let on = |arn: &str| sims.iter().find(|s| s.resource == arn).unwrap();
        let retire =
            on("arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup:*:autoScalingGroupName/blue-workers");
        assert!(retire
            .actions
            .contains(&"autoscaling:TerminateInstanceInAutoScalingGroup".into()));
        assert_eq!(retire.context[0].name, "autoscaling:ResourceTag/swarm:cluster");
        let instance = on("arn:aws:ec2:eu-west-1:111122223333:instance/*");
        assert_eq!(instance.context[0].name, "ssm:resourceTag/swarm:cluster");
        let record = sims
            .iter()
            .find(|s| s.actions.contains(&"route53:ChangeResourceRecordSets".into()))
            .unwrap();
        assert_eq!(record.context[0].values, ["managers.example.com"]);
        // The zone read and the record change are two simulations: one has the record's keys.
        assert!(on("arn:aws:route53:::hostedzone/Z1").context.is_empty());
        assert_eq!(
            on("arn:aws:sqs:eu-west-1:111122223333:swarm-blue-failed").actions,
            ["sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
        );
        assert_eq!(
            on("arn:aws:ssm:eu-west-1:111122223333:parameter/swarm/blue/init-lock").actions,
            ["ssm:PutParameter", "ssm:GetParametersByPath"]
        );
    }

    #[test]
    fn the_callers_principal() {
        assert_eq!(
            principal_of("arn:aws:sts::111122223333:assumed-role/blue-OperatorRole-X/alice"),
            Principal::Simulated("arn:aws:iam::111122223333:role/blue-OperatorRole-X".into())
        );
        assert_eq!(
            principal_of("arn:aws-cn:iam::111122223333:user/ops/bob"),
            Principal::Simulated("arn:aws-cn:iam::111122223333:user/ops/bob".into())
        );
        assert_eq!(principal_of("arn:aws:iam::111122223333:root"), Principal::Root);
        assert!(matches!(
            principal_of("arn:aws:sts::111122223333:federated-user/carol"),
            Principal::NotSimulated(_)
        ));
        assert!(matches!(principal_of("nonsense"), Principal::NotSimulated(_)));
    }

    #[test]
    fn each_refused_action_is_one_finding_naming_the_commands_it_breaks() {
        let refused = |action: &str, resource: &str| Refused {
            action: action.into(),
            resource: resource.into(),
            decision: "implicitDeny".into(),
        };
        let found = access_findings(
            "arn:aws:sts::1:assumed-role/R/s",
            &[
                refused("autoscaling:TerminateInstanceInAutoScalingGroup", "g1"),
                refused("autoscaling:TerminateInstanceInAutoScalingGroup", "g2"),
                refused("ssm:DescribeParameters", "*"),
            ],
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].wire, "your credentials (arn:aws:sts::1:assumed-role/R/s)");
        assert!(found[0]
            .broken
            .contains("on g1, g2 (implicitDeny): `retire` will be refused"));
        assert!(found[1].broken.contains("`doctor`"));
        assert!(found[0].fix.contains("OperatorRole"));
        assert!(access_findings("c", &[]).is_empty());
    }
}
