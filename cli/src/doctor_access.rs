//! The doctor's check of the caller's own access: who is calling (STS GetCallerIdentity, which
//! needs no permission), then IAM's simulation of that principal's policies
//! (SimulatePrincipalPolicy) for every call of the command, on the stack's resources
//! (`plan::doctor::access`). Reads only.

use aws_config::SdkConfig;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum};
use swarm_core::plan::doctor::access::{self, AccessSeen, Facts, Principal, Refused, Simulation};
use swarm_core::plan::doctor::{Expected, StackSeen};

/// What IAM says of every call the command makes; a check that cannot be made is said in
/// `unchecked`, not an error: the other wires are still judged.
pub async fn read(conf: &SdkConfig, s: &StackSeen, want: &Expected, queues: (&[&str], &[&str])) -> AccessSeen {
    let who = match aws_sdk_sts::Client::new(conf).get_caller_identity().send().await {
        Ok(who) => who,
        Err(e) => {
            return AccessSeen {
                caller: "unknown".into(),
                unchecked: Some(format!("GetCallerIdentity: {}", e.message().unwrap_or("no answer"))),
                ..Default::default()
            }
        }
    };
    let caller = who.arn().unwrap_or_default().to_string();
    let region = conf.region().map_or("us-east-1", |r| r.as_ref());
    let facts = Facts::of(s, want, (&caller, who.account().unwrap_or_default()), region, queues);
    let mut seen = AccessSeen {
        caller: caller.clone(),
        ..Default::default()
    };
    let source = match access::principal_of(&caller) {
        Principal::Root => return seen,
        Principal::NotSimulated(arn) => {
            seen.unchecked = Some(format!("IAM cannot simulate {arn}'s policies"));
            return seen;
        }
        Principal::Simulated(arn) => arn,
    };
    let iam = aws_sdk_iam::Client::new(conf);
    for sim in access::simulations(&facts) {
        match simulate(&iam, &source, &sim).await {
            Ok(refused) => seen.refused.extend(refused),
            Err(why) => {
                seen.unchecked = Some(why);
                break;
            }
        }
    }
    seen
}

/// The calls of one simulation IAM does not allow.
async fn simulate(iam: &aws_sdk_iam::Client, source: &str, sim: &Simulation) -> Result<Vec<Refused>, String> {
    let context = sim.context.iter().map(|k| {
        ContextEntry::builder()
            .context_key_name(&k.name)
            .context_key_type(ContextKeyTypeEnum::from(k.kind))
            .set_context_key_values(Some(k.values.clone()))
            .build()
    });
    let mut pages = iam
        .simulate_principal_policy()
        .policy_source_arn(source)
        .set_action_names(Some(sim.actions.clone()))
        .resource_arns(&sim.resource)
        .set_context_entries(Some(context.collect()))
        .into_paginator()
        .items()
        .send();
    let mut refused = Vec::new();
    while let Some(result) = pages.next().await {
        let r = result.map_err(|e| {
            format!(
                "iam:SimulatePrincipalPolicy for {source}: {}: {}",
                e.code().unwrap_or("no answer"),
                e.message().unwrap_or_default()
            )
        })?;
        let decision = r.eval_decision().as_str();
        if decision != "allowed" {
            refused.push(Refused {
                action: r.eval_action_name().to_string(),
                resource: r.eval_resource_name().unwrap_or(&sim.resource).to_string(),
                decision: decision.to_string(),
            });
        }
    }
    Ok(refused)
}
