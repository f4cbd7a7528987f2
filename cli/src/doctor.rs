//! `swarm-lifecycle doctor`: a deployed stack's wiring read from AWS (CloudFormation, EventBridge,
//! Lambda, Auto Scaling, SQS) and judged by `plan::doctor`: each broken wire named with its fix.
//! Reads only.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::fixtures::FIXTURES;
use aws_config::SdkConfig;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use swarm_core::plan::doctor::{
    self, AlarmTopicSeen, Deployed, Expected, FunctionSeen, HookSeen, QueueSeen, RuleSeen, StackSeen, TokenSeen,
};

/// The queues whose messages are failures: Lambda's on-failure destination, the rules'
/// dead-letter queue, the drain checks' dead-letter queue.
const QUEUES: &[&str] = &["FailedInvocations", "UndeliveredEvents", "DrainChecksFailed"];
/// The queues whose messages the doctor reads (SQS's own key): UndeliveredEvents is encrypted
/// with AlarmKey, which the operator's role may not use, so it is counted only.
const PEEKED: &[&str] = &["FailedInvocations", "DrainChecksFailed"];

struct Clients {
    cfn: aws_sdk_cloudformation::Client,
    events: aws_sdk_eventbridge::Client,
    lambda: aws_sdk_lambda::Client,
    asg: aws_sdk_autoscaling::Client,
    sqs: aws_sdk_sqs::Client,
    ssm: aws_sdk_ssm::Client,
    sns: aws_sdk_sns::Client,
}

type Read<T> = Result<T, String>;

/// One line: what could not be read, AWS's code and message (not the SDK's whole chain), and
/// what to do about it.
fn said<E, R>(what: &str, e: aws_sdk_cloudformation::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = match e.code() {
        Some(code) => format!("{what}: {code}: {}", e.message().unwrap_or_default()),
        // No answer from AWS (no credentials, no connection): the root cause, its first line.
        None => {
            let mut cause: &dyn std::error::Error = &e;
            while let Some(next) = cause.source() {
                cause = next;
            }
            let root = cause.to_string();
            format!("{what}: {}", root.lines().next().unwrap_or_default())
        }
    };
    format!("{text}{}", crate::hint(&text))
}

/// Exit 0: every wire holds; 1: findings, each printed; 2: the stack cannot be read.
pub async fn run(conf: &SdkConfig, stack: &str, json: bool) -> ExitCode {
    let c = Clients {
        cfn: aws_sdk_cloudformation::Client::new(conf),
        events: aws_sdk_eventbridge::Client::new(conf),
        lambda: aws_sdk_lambda::Client::new(conf),
        asg: aws_sdk_autoscaling::Client::new(conf),
        sqs: aws_sdk_sqs::Client::new(conf),
        ssm: aws_sdk_ssm::Client::new(conf),
        sns: aws_sdk_sns::Client::new(conf),
    };
    let (seen, want) = match read_stack(&c, stack)
        .await
        .and_then(|s| doctor::expected(&s).map(|e| (s, e)))
    {
        Ok(x) => x,
        Err(e) => {
            eprintln!("swarm-lifecycle: doctor: {e}");
            return ExitCode::from(2);
        }
    };
    let deployed = match read_deployed(&c, &seen, &want).await {
        Ok(mut d) => {
            d.access = Some(crate::doctor_access::read(conf, &seen, &want, (QUEUES, PEEKED)).await);
            d
        }
        Err(e) => {
            eprintln!("swarm-lifecycle: doctor: {e}");
            return ExitCode::from(2);
        }
    };
    let findings = doctor::diagnose(&want, &deployed);
    if json {
        println!("{}", serde_json::json!({ "stack": stack, "findings": findings }));
    } else if findings.is_empty() {
        println!(
            "stack {stack}: every wire holds ({} rules, {} hooks, {} queues)",
            want.rules.len(),
            deployed.hooks.len(),
            deployed.queues.len()
        );
    } else {
        for f in &findings {
            println!("{}: {}\n    fix: {}", f.wire, f.broken, f.fix);
        }
    }
    if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn read_stack(c: &Clients, stack: &str) -> Read<StackSeen> {
    let out = c.cfn.describe_stacks().stack_name(stack).send().await.map_err(|e| {
        said(
            &format!("no stack {stack} can be read (pass --stack with the CloudFormation stack's name)"),
            e,
        )
    })?;
    let s = out.stacks().first().ok_or(format!("no stack {stack}"))?;
    let params = s
        .parameters()
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_key()?.to_string(),
                p.parameter_value().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    let out = c
        .cfn
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| said("its resources", e))?;
    let resources = out
        .stack_resources()
        .iter()
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_string(),
                r.physical_resource_id()?.to_string(),
            ))
        })
        .collect();
    Ok(StackSeen {
        id: s.stack_id().unwrap_or(stack).to_string(),
        params,
        resources,
    })
}

async fn read_deployed(c: &Clients, s: &StackSeen, want: &Expected) -> Read<Deployed> {
    let mut d = Deployed::default();
    let groups = ["ManagerGroup", "WorkerGroup"].map(|g| s.resources.get(g).cloned());
    let substitute = |text: &str| {
        let mut t = text.replace("prod-managers", groups[0].as_deref().unwrap_or("prod-managers"));
        t = t.replace("prod-workers", groups[1].as_deref().unwrap_or("prod-workers"));
        match s.params.get("EcsClusterArn").filter(|v| !v.is_empty()) {
            Some(arn) => t.replace("arn:aws:ecs:us-east-1:123456789012:cluster/prod", arn),
            None => t,
        }
    };
    for ((rule, function), wire) in want.rules.iter().zip(doctor::wires(s)) {
        d.rules.push(read_rule(c, rule, wire.fixtures, &substitute).await?);
        if !d.functions.iter().any(|f: &FunctionSeen| &f.name == function) {
            if let Some(f) = read_function(c, function).await? {
                d.functions.push(f);
            }
        }
    }
    for group in groups.into_iter().flatten() {
        let out = c
            .asg
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(&group)
            .send()
            .await
            .map_err(|e| said(&format!("the hooks of {group}"), e))?;
        d.hooks.extend(out.lifecycle_hooks().iter().map(|h| HookSeen {
            group: group.clone(),
            name: h.lifecycle_hook_name().unwrap_or_default().to_string(),
            transition: h.lifecycle_transition().unwrap_or_default().to_string(),
            heartbeat_timeout: h.heartbeat_timeout().unwrap_or_default().max(0) as u64,
            default_result: h.default_result().unwrap_or_default().to_string(),
        }));
    }
    for q in QUEUES {
        let Some(url) = s.resources.get(*q) else { continue };
        let out = c
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| said(&format!("queue {q}"), e))?;
        let messages = out
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let mut seen = QueueSeen {
            name: url.rsplit('/').next().unwrap_or(url).to_string(),
            messages,
            ..Default::default()
        };
        if messages > 0 && PEEKED.contains(q) {
            peek(c, url, &mut seen).await?;
        }
        d.queues.push(seen);
    }
    d.tokens = read_tokens(c, &want.token_parameters).await?;
    if let Some(arn) = &want.alarm_topic {
        d.alarm_topic = read_alarm_topic(c, arn).await?;
    }
    Ok(d)
}

/// Reads up to ten of a failure queue's messages without taking them: visibility timeout 0
/// leaves each visible to the next reader ("the duration that the received messages are
/// hidden from subsequent retrieve requests"), so the doctor changes nothing. Notes the
/// oldest one's age and says the newest.
async fn peek(c: &Clients, url: &str, q: &mut QueueSeen) -> Read<()> {
    use aws_sdk_sqs::types::MessageSystemAttributeName as Attr;
    let out = c
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .message_system_attribute_names(Attr::SentTimestamp)
        .send()
        .await
        .map_err(|e| said(&format!("the messages of queue {}", q.name), e))?;
    let sent = |m: &aws_sdk_sqs::types::Message| -> Option<u64> {
        m.attributes()?.get(&Attr::SentTimestamp)?.parse::<u64>().ok()
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let messages = out.messages();
    q.oldest_secs = messages
        .iter()
        .filter_map(sent)
        .min()
        .map(|ms| now_ms.saturating_sub(ms) / 1000);
    q.newest = messages
        .iter()
        .max_by_key(|m| sent(m))
        .and_then(|m| doctor::failure_said(m.body().unwrap_or_default()));
    Ok(())
}

/// The alarm topic's access policy and key; None when it does not exist.
async fn read_alarm_topic(c: &Clients, arn: &str) -> Read<Option<AlarmTopicSeen>> {
    let found = c.sns.get_topic_attributes().topic_arn(arn).send().await;
    // SNS names a missing topic NotFound.
    let Some(out) = found_or_none(found, "NotFound", &format!("alarm topic {arn}"))? else {
        return Ok(None);
    };
    let attributes = out.attributes();
    let get = |k: &str| attributes.and_then(|a| a.get(k)).cloned();
    Ok(Some(AlarmTopicSeen {
        arn: arn.to_string(),
        policy: get("Policy").unwrap_or_default(),
        key_id: get("KmsMasterKeyId"),
    }))
}

/// The join tokens' parameters that exist: their type and key, never their values.
async fn read_tokens(c: &Clients, names: &[String]) -> Read<Vec<TokenSeen>> {
    let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
        .key("Name")
        .option("Equals")
        .set_values(Some(names.to_vec()))
        .build()
        .map_err(|e| e.to_string())?;
    let out = c
        .ssm
        .describe_parameters()
        .parameter_filters(filter)
        .send()
        .await
        .map_err(|e| said("the join tokens' parameters", e))?;
    Ok(out
        .parameters()
        .iter()
        .map(|p| TokenSeen {
            name: p.name().unwrap_or_default().to_string(),
            kind: p.r#type().map_or("String", |t| t.as_str()).to_string(),
            key_id: p.key_id().map(str::to_string),
        })
        .collect())
}

/// A rule as EventBridge holds it: None when it does not exist.
async fn read_rule(
    c: &Clients,
    name: &str,
    fixtures: &[&str],
    substitute: &dyn Fn(&str) -> String,
) -> Read<Option<RuleSeen>> {
    let found = c.events.describe_rule().name(name).send().await;
    let Some(rule) = found_or_none(found, NOT_FOUND, &format!("rule {name}"))? else {
        return Ok(None);
    };
    let targets = c
        .events
        .list_targets_by_rule()
        .rule(name)
        .send()
        .await
        .map_err(|e| said(&format!("the targets of rule {name}"), e))?;
    let mut unmatched = Vec::new();
    if let Some(pattern) = rule.event_pattern() {
        for fixture in fixtures {
            let Some((_, text)) = FIXTURES.iter().find(|(f, _)| f == fixture) else {
                continue;
            };
            let out = c
                .events
                .test_event_pattern()
                .event_pattern(pattern)
                .event(substitute(text))
                .send()
                .await
                .map_err(|e| said(&format!("rule {name}'s pattern against {fixture}"), e))?;
            if !out.result() {
                unmatched.push(fixture.to_string());
            }
        }
    }
    Ok(Some(RuleSeen {
        name: name.to_string(),
        arn: rule.arn().unwrap_or_default().to_string(),
        enabled: rule.state() == Some(&aws_sdk_eventbridge::types::RuleState::Enabled),
        targets: targets.targets().iter().map(|t| t.arn().to_string()).collect(),
        unmatched_fixtures: unmatched,
    }))
}

/// A function's environment and the rules its resource policy lets invoke it; None when it
/// does not exist (its rule then names it missing).
async fn read_function(c: &Clients, name: &str) -> Read<Option<FunctionSeen>> {
    let found = c.lambda.get_function_configuration().function_name(name).send().await;
    let Some(conf) = found_or_none(found, NOT_FOUND, &format!("function {name}"))? else {
        return Ok(None);
    };
    let env: BTreeMap<String, String> = conf
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    // No policy at all: ResourceNotFoundException, as for a function without one.
    let found = c.lambda.get_policy().function_name(name).send().await;
    let policy = found_or_none(found, NOT_FOUND, &format!("the policy of function {name}"))?
        .and_then(|p| p.policy().map(str::to_string))
        .unwrap_or_default();
    Ok(Some(FunctionSeen {
        name: name.to_string(),
        arn: conf.function_arn().unwrap_or_default().to_string(),
        role: conf.role().unwrap_or_default().to_string(),
        env,
        invoked_by: invoked_by(&policy),
    }))
}

/// EventBridge's and Lambda's code for a thing that does not exist.
const NOT_FOUND: &str = "ResourceNotFoundException";

/// Ok(None) when AWS answers that the thing does not exist (its service's `not_found` code).
fn found_or_none<T, E, R>(
    r: Result<T, aws_sdk_cloudformation::error::SdkError<E, R>>,
    not_found: &str,
    what: &str,
) -> Read<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match r {
        Ok(x) => Ok(Some(x)),
        Err(e) if e.code() == Some(not_found) => Ok(None),
        Err(e) => Err(said(what, e)),
    }
}

/// The rule ARNs a function's resource policy lets EventBridge invoke it for.
fn invoked_by(policy: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(policy) else {
        return vec![];
    };
    doc["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|st| st["Effect"] == "Allow" && st["Principal"]["Service"] == "events.amazonaws.com")
        .filter_map(|st| st["Condition"]["ArnLike"]["AWS:SourceArn"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_gives_the_rules_eventbridge_may_invoke_for() {
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"a","Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"lambda:InvokeFunction",
             "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:events:us-east-1:1:rule/x"}}},
            {"Sid":"b","Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"lambda:InvokeFunction",
             "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:sns:us-east-1:1:t"}}}]}"#;
        assert_eq!(
            invoked_by(policy),
            vec!["arn:aws:events:us-east-1:1:rule/x".to_string()]
        );
        assert!(invoked_by("").is_empty());
    }

    #[test]
    fn every_wires_fixture_is_compiled_in() {
        for w in doctor::WIRES {
            for f in w.fixtures {
                assert!(FIXTURES.iter().any(|(n, _)| n == f), "{f}");
            }
        }
    }
}
