//! What a stack says its wiring is, from CloudFormation's DescribeStacks (parameters) and
//! DescribeStackResources (physical ids): the template's rules, each with the function it
//! invokes and the event fixtures its pattern must match.

use std::collections::BTreeMap;

use super::Expected;

/// One rule of the template: its logical id, its target function's, and the fixtures of
/// events/ (by file name) its pattern must match.
pub struct Wire {
    pub rule: &'static str,
    pub function: &'static str,
    /// The template's execution role of the function (its `Role: !GetAtt <role>.Arn`).
    pub role: &'static str,
    pub fixtures: &'static [&'static str],
}

/// The template's pattern rules (infra/template.yaml), in the order an event's life goes.
pub const WIRES: &[Wire] = &[
    Wire {
        rule: "LaunchRule",
        function: "LaunchFunction",
        role: "LifecycleRole",
        fixtures: &["lifecycle-launch-manager.json", "lifecycle-launch-worker.json"],
    },
    Wire {
        rule: "TerminateRule",
        function: "TerminateFunction",
        role: "LifecycleRole",
        fixtures: &["lifecycle-terminate-manager.json", "lifecycle-terminate-worker.json"],
    },
    Wire {
        rule: "EcsRule",
        function: "EcsFunction",
        role: "EcsRole",
        fixtures: &[
            "ecs-instance-active.json",
            "ecs-instance-draining.json",
            "ecs-instance-deregistered.json",
        ],
    },
    Wire {
        rule: "SpotRule",
        function: "SpotNoticeFunction",
        role: "NoticeRole",
        fixtures: &[
            "ec2-spot-interruption-warning.json",
            "ec2-rebalance-recommendation.json",
        ],
    },
    Wire {
        rule: "InstanceStateRule",
        function: "NoticeFunction",
        role: "NoticeRole",
        fixtures: &[
            "ec2-instance-stopping.json",
            "ec2-instance-shutting-down.json",
            "ec2-instance-running.json",
        ],
    },
    Wire {
        rule: "ScheduledChangeRule",
        function: "ScheduledChangeFunction",
        role: "NoticeRole",
        fixtures: &["health-instance-retirement-scheduled.json"],
    },
];

/// A stack as CloudFormation describes it: each parameter's value, each resource's physical
/// id by logical id.
#[derive(Debug, Clone, Default)]
pub struct StackSeen {
    /// Its StackId (an ARN).
    pub id: String,
    pub params: BTreeMap<String, String>,
    pub resources: BTreeMap<String, String>,
}

impl StackSeen {
    fn number(&self, name: &str) -> Result<u64, String> {
        let v = self
            .params
            .get(name)
            .ok_or_else(|| format!("the stack has no parameter {name}: is it this project's stack?"))?;
        v.parse()
            .map_err(|_| format!("the stack's {name} is {v:?}, not a number"))
    }
}

/// The wires the stack should have: every rule of the template, the ECS rule only with an
/// EcsClusterArn (the template's condition).
pub fn wires(s: &StackSeen) -> impl Iterator<Item = &'static Wire> {
    let has_ecs = s.params.get("EcsClusterArn").is_some_and(|v| !v.is_empty());
    WIRES.iter().filter(move |w| w.rule != "EcsRule" || has_ecs)
}

/// What the stack says the wiring is. The ECS rule is expected only with an EcsClusterArn (the
/// template's condition); a rule or function the stack should have and does not list is
/// expected by its logical id, so it is reported missing. Err: not this project's stack.
pub fn expected(s: &StackSeen) -> Result<Expected, String> {
    let cluster = s
        .params
        .get("ClusterName")
        .cloned()
        .ok_or("the stack has no parameter ClusterName: is it this project's stack?")?;
    let name = |logical: &str| s.resources.get(logical).cloned().unwrap_or_else(|| logical.to_string());
    let rules = wires(s).map(|w| (name(w.rule), name(w.function))).collect();
    // A role the stack does not list is not judged (the function's own check says enough).
    let roles = wires(s)
        .filter_map(|w| Some((name(w.function), s.resources.get(w.role)?.clone())))
        .collect();
    let parameter_prefix = s
        .params
        .get("ParameterPrefix")
        .cloned()
        .unwrap_or_else(|| "/swarm".into());
    let token_parameters = ["worker", "manager"]
        .map(|role| format!("{parameter_prefix}/{cluster}/join-token/{role}"))
        .to_vec();
    let token_key = ["TokenKeyAlias", "TokenKey"]
        .iter()
        .filter_map(|logical| s.resources.get(*logical).cloned())
        .collect();
    Ok(Expected {
        cluster,
        hosted_zone_id: s.params.get("HostedZoneId").cloned().unwrap_or_default(),
        dns_ttl: s.number("DnsTtl")?,
        hold_extra: s.number("HoldExtra")?,
        agent_wait: s.number("AgentWait")?,
        join_budget: s.number("JoinBudget")?,
        rules,
        roles,
        parameter_prefix,
        token_parameters,
        token_key,
        alarm_topic: s.resources.get("AlarmTopic").cloned(),
        alarm_key: s.resources.get("AlarmKey").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(ecs: &str) -> StackSeen {
        let params = [
            ("ClusterName", "blue"),
            ("HostedZoneId", "Z1"),
            ("DnsTtl", "60"),
            ("HoldExtra", "120"),
            ("AgentWait", "300"),
            ("JoinBudget", "300"),
            ("EcsClusterArn", ecs),
        ];
        let resources = [
            ("LaunchRule", "blue-LaunchRule-1A2B"),
            ("LaunchFunction", "swarm-blue-launch-hook"),
            ("LifecycleRole", "blue-LifecycleRole-9Z8Y"),
            ("TokenKeyAlias", "alias/swarm-blue-tokens"),
            ("TokenKey", "1234abcd-12ab"),
        ];
        StackSeen {
            id: "arn:aws:cloudformation:us-east-1:1:stack/blue/x".into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            resources: resources.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn the_rules_are_the_stacks_by_physical_id_and_the_ecs_rule_only_with_ecs() {
        let e = expected(&stack("")).unwrap();
        assert_eq!((e.cluster.as_str(), e.dns_ttl, e.hold_extra), ("blue", 60, 120));
        assert_eq!(e.rules.len(), WIRES.len() - 1);
        assert_eq!(
            e.rules[0],
            ("blue-LaunchRule-1A2B".into(), "swarm-blue-launch-hook".into())
        );
        // Not listed by the stack: expected by its logical id, so reported missing.
        assert_eq!(e.rules[1], ("TerminateRule".into(), "TerminateFunction".into()));
        assert_eq!(
            e.token_parameters,
            ["/swarm/blue/join-token/worker", "/swarm/blue/join-token/manager"]
        );
        assert_eq!(e.token_key, ["alias/swarm-blue-tokens", "1234abcd-12ab"]);
        // The hook functions' role, as the stack names it; the others' roles are not listed.
        assert_eq!(
            e.roles.into_iter().collect::<Vec<_>>(),
            [
                ("TerminateFunction".into(), "blue-LifecycleRole-9Z8Y".into()),
                ("swarm-blue-launch-hook".into(), "blue-LifecycleRole-9Z8Y".into())
            ]
        );
        let with_ecs = expected(&stack("arn:aws:ecs:us-east-1:1:cluster/blue")).unwrap();
        assert!(with_ecs.rules.iter().any(|(r, _)| r == "EcsRule"));
    }

    #[test]
    fn each_wire_names_the_role_the_template_gives_its_function() {
        let template = include_str!("../../../../../infra/template.yaml");
        for w in WIRES {
            let block = template
                .split(&format!("\n  {}:\n", w.function))
                .nth(1)
                .unwrap_or_else(|| panic!("{} is not in the template", w.function));
            // The resource's own lines: up to the next resource (two spaces of indent).
            let own: String = block
                .lines()
                .take_while(|l| l.is_empty() || l.starts_with("    "))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                own.contains(&format!("Role: !GetAtt {}.Arn", w.role)),
                "{}: not run as {}",
                w.function,
                w.role
            );
        }
    }

    #[test]
    fn another_stack_is_refused_with_a_reason() {
        let mut s = stack("");
        s.params.remove("DnsTtl");
        assert!(expected(&s).unwrap_err().contains("DnsTtl"));
        s.params.insert("DnsTtl".into(), "soon".into());
        assert!(expected(&s).unwrap_err().contains("not a number"));
    }
}
