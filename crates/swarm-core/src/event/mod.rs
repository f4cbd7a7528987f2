//! Event shapes and their normalisation into one intent type.
//!
//! aws_lambda_events gives the EventBridge envelope; the lifecycle-action detail is
//! defined here. Unknown fields are accepted: AWS adds fields over time.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

mod notice;
pub use notice::*;

pub const LAUNCH_DETAIL_TYPE: &str = "EC2 Instance-launch Lifecycle Action";
pub const TERMINATE_DETAIL_TYPE: &str = "EC2 Instance-terminate Lifecycle Action";
pub const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
pub const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
pub const ECS_DETAIL_TYPE: &str = "ECS Container Instance State Change";
pub const SCHEDULED_DETAIL_TYPE: &str = "Scheduled Event";
pub const SPOT_WARNING_DETAIL_TYPE: &str = "EC2 Spot Instance Interruption Warning";
pub const REBALANCE_DETAIL_TYPE: &str = "EC2 Instance Rebalance Recommendation";
pub const STATE_CHANGE_DETAIL_TYPE: &str = "EC2 Instance State-change Notification";
pub const HEALTH_DETAIL_TYPE: &str = "AWS Health Event";

/// `detail` of "EC2 Instance-launch/terminate Lifecycle Action".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleActionDetail {
    pub lifecycle_action_token: String,
    pub auto_scaling_group_name: String,
    pub lifecycle_hook_name: String,
    #[serde(rename = "EC2InstanceId")]
    pub ec2_instance_id: String,
    pub lifecycle_transition: String,
    #[serde(default)]
    pub notification_metadata: Option<String>,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub destination: Option<String>,
}

/// `detail` of "ECS Container Instance State Change" (the fields used; others accepted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceDetail {
    pub ec2_instance_id: String,
    pub status: String,
    #[serde(default)]
    pub agent_connected: bool,
    #[serde(default)]
    pub cluster_arn: Option<String>,
    #[serde(default)]
    pub container_instance_arn: Option<String>,
    #[serde(default)]
    pub version: Option<u64>,
}

/// What an ECS container-instance status asks of the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcsChange {
    /// ACTIVE with its agent connected: the instance belongs in the swarm.
    Active,
    /// DRAINING: drain its node too.
    Draining,
    /// INACTIVE (deregistered): the node leaves and is removed.
    Deregistered,
    /// REGISTERING, DEREGISTERING, ACTIVE without agent, …: nothing to do yet.
    Transitional,
}

/// Parses an ECS container-instance state change.
pub fn ecs_change(raw: &Value) -> Result<(EventMeta, String, EcsChange), EventError> {
    let (ev, meta) = accept(raw, "aws.ecs", &[ECS_DETAIL_TYPE])?;
    let d: ContainerInstanceDetail = serde_json::from_value(ev.detail).map_err(|e| EventError::Detail {
        detail_type: meta.detail_type.clone(),
        reason: e.to_string(),
    })?;
    if !crate::safe::is_instance_id(&d.ec2_instance_id) {
        return Err(EventError::Detail {
            detail_type: meta.detail_type.clone(),
            reason: format!("ec2InstanceId {:?} is not an instance id", d.ec2_instance_id),
        });
    }
    let change = match (d.status.as_str(), d.agent_connected) {
        ("ACTIVE", true) => EcsChange::Active,
        ("DRAINING", _) => EcsChange::Draining,
        ("INACTIVE", _) => EcsChange::Deregistered,
        _ => EcsChange::Transitional,
    };
    Ok((meta, d.ec2_instance_id, change))
}

/// Which lifecycle action to complete or heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleAction {
    pub group: String,
    pub hook: String,
    pub token: String,
    pub instance_id: String,
    /// Unix seconds at which the action began (the event's `time`): its budgets count
    /// from here, not from an invocation that may have waited in Lambda's queue.
    pub started_unix: Option<u64>,
}

/// What an event asks for, whatever its source.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// An instance should be in the swarm (launch hook, ECS agent connected, reconcile).
    Join {
        instance_id: String,
        group: String,
        action: Option<LifecycleAction>,
    },
    /// An instance is leaving (terminate hook, ECS deregistration).
    Retire {
        instance_id: String,
        group: String,
        action: Option<LifecycleAction>,
    },
    /// Drain the instance's node but keep it in the swarm (ECS DRAINING, a rebalance
    /// recommendation).
    Drain { instance_id: String, group: String },
    /// The node takes no new tasks and keeps its own (a rebalance recommendation, when so
    /// configured).
    Cordon { instance_id: String, group: String },
}

impl Intent {
    pub fn instance_id(&self) -> &str {
        match self {
            Intent::Join { instance_id, .. }
            | Intent::Retire { instance_id, .. }
            | Intent::Drain { instance_id, .. }
            | Intent::Cordon { instance_id, .. } => instance_id,
        }
    }
    pub fn group(&self) -> &str {
        match self {
            Intent::Join { group, .. }
            | Intent::Retire { group, .. }
            | Intent::Drain { group, .. }
            | Intent::Cordon { group, .. } => group,
        }
    }
    pub fn action(&self) -> Option<&LifecycleAction> {
        match self {
            Intent::Join { action, .. } | Intent::Retire { action, .. } => action.as_ref(),
            Intent::Drain { .. } | Intent::Cordon { .. } => None,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Intent::Join { .. } => "join",
            Intent::Retire { .. } => "retire",
            Intent::Drain { .. } => "drain",
            Intent::Cordon { .. } => "cordon",
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum EventError {
    #[error("not an EventBridge event: {0}")]
    Envelope(String),
    #[error("unsupported event: source {event_source:?}, detail-type {detail_type:?}")]
    Unsupported { event_source: String, detail_type: String },
    #[error("malformed {detail_type:?} detail: {reason}")]
    Detail { detail_type: String, reason: String },
    #[error("test notification (sent once when a hook is created): nothing to do")]
    TestNotification,
}

/// The envelope fields every log line carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventMeta {
    pub id: String,
    pub detail_type: String,
}

pub fn envelope(raw: &Value) -> Result<EventBridgeEvent<Value>, EventError> {
    serde_json::from_value::<EventBridgeEvent<Value>>(raw.clone()).map_err(|e| EventError::Envelope(e.to_string()))
}

/// The envelope of an event from `source` with one of `detail_types`, and its id and type;
/// any other event is `Unsupported`.
fn accept(
    raw: &Value,
    source: &str,
    detail_types: &[&str],
) -> Result<(EventBridgeEvent<Value>, EventMeta), EventError> {
    let ev = envelope(raw)?;
    if ev.source != source || !detail_types.contains(&ev.detail_type.as_str()) {
        return Err(EventError::Unsupported {
            event_source: ev.source,
            detail_type: ev.detail_type,
        });
    }
    let meta = EventMeta {
        id: ev.id.clone().unwrap_or_default(),
        detail_type: ev.detail_type.clone(),
    };
    Ok((ev, meta))
}

/// Parses a lifecycle-action event into an intent.
pub fn lifecycle_intent(raw: &Value) -> Result<(EventMeta, Intent), EventError> {
    let ev = envelope(raw)?;
    let meta = EventMeta {
        id: ev.id.clone().unwrap_or_default(),
        detail_type: ev.detail_type.clone(),
    };
    let expect_transition = match (ev.source.as_str(), ev.detail_type.as_str()) {
        ("aws.autoscaling", LAUNCH_DETAIL_TYPE) => LAUNCHING,
        ("aws.autoscaling", TERMINATE_DETAIL_TYPE) => TERMINATING,
        _ => {
            return Err(EventError::Unsupported {
                event_source: ev.source,
                detail_type: ev.detail_type,
            })
        }
    };
    if ev.detail.get("Event").and_then(Value::as_str) == Some("autoscaling:TEST_NOTIFICATION") {
        return Err(EventError::TestNotification);
    }
    let bad = |reason: String| EventError::Detail {
        detail_type: ev.detail_type.clone(),
        reason,
    };
    let d: LifecycleActionDetail = serde_json::from_value(ev.detail.clone()).map_err(|e| bad(e.to_string()))?;
    if d.lifecycle_transition != expect_transition {
        return Err(bad(format!(
            "LifecycleTransition {:?} does not match the detail-type",
            d.lifecycle_transition
        )));
    }
    if !crate::safe::is_instance_id(&d.ec2_instance_id) {
        return Err(bad(format!(
            "EC2InstanceId {:?} is not an instance id",
            d.ec2_instance_id
        )));
    }
    if d.auto_scaling_group_name.is_empty() || d.auto_scaling_group_name.len() > 255 {
        return Err(bad("AutoScalingGroupName must have 1 to 255 characters".into()));
    }
    let action = Some(LifecycleAction {
        group: d.auto_scaling_group_name.clone(),
        hook: d.lifecycle_hook_name,
        token: d.lifecycle_action_token,
        instance_id: d.ec2_instance_id.clone(),
        started_unix: ev.time.and_then(|t| u64::try_from(t.timestamp()).ok()),
    });
    let intent = if expect_transition == LAUNCHING {
        Intent::Join {
            instance_id: d.ec2_instance_id,
            group: d.auto_scaling_group_name,
            action,
        }
    } else {
        Intent::Retire {
            instance_id: d.ec2_instance_id,
            group: d.auto_scaling_group_name,
            action,
        }
    };
    Ok((meta, intent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn launch() -> Value {
        json!({
          "version": "0", "id": "12345678-1234-1234-1234-123456789012",
          "detail-type": "EC2 Instance-launch Lifecycle Action", "source": "aws.autoscaling",
          "account": "123456789012", "time": "2026-11-21T00:00:00Z", "region": "us-east-1",
          "resources": ["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1:autoScalingGroupName/mgr"],
          "detail": {
            "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
            "AutoScalingGroupName": "mgr", "LifecycleHookName": "launch",
            "EC2InstanceId": "i-0123456789abcdef0",
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "Origin": "EC2", "Destination": "AutoScalingGroup", "SomeFutureField": 1
          }
        })
    }

    #[test]
    fn launch_becomes_join() {
        let (meta, intent) = lifecycle_intent(&launch()).unwrap();
        assert_eq!(meta.id, "12345678-1234-1234-1234-123456789012");
        assert!(matches!(intent, Intent::Join { ref instance_id, .. } if instance_id == "i-0123456789abcdef0"));
        assert_eq!(intent.action().unwrap().hook, "launch");
    }

    #[test]
    fn terminate_becomes_retire() {
        let mut e = launch();
        e["detail-type"] = json!(TERMINATE_DETAIL_TYPE);
        e["detail"]["LifecycleTransition"] = json!(TERMINATING);
        assert!(matches!(lifecycle_intent(&e).unwrap().1, Intent::Retire { .. }));
    }

    fn ecs(status: &str, connected: bool) -> Value {
        json!({
          "version": "0", "id": "8952ba83-7be2-4ab5-9c32-6687532d15a2",
          "detail-type": "ECS Container Instance State Change", "source": "aws.ecs",
          "account": "111122223333", "time": "2016-12-06T16:41:06Z", "region": "us-east-1",
          "resources": ["arn:aws:ecs:us-east-1:111122223333:container-instance/b54a2a04-046f-4331-9d74-3f6d7f6ca315"],
          "detail": {
            "agentConnected": connected, "clusterArn": "arn:aws:ecs:us-east-1:111122223333:cluster/default",
            "containerInstanceArn": "arn:aws:ecs:us-east-1:111122223333:container-instance/b54a2a04-046f-4331-9d74-3f6d7f6ca315",
            "ec2InstanceId": "i-0123456789abcdef0", "status": status, "version": 14801,
            "registeredResources": [], "remainingResources": [], "attributes": [], "updatedAt": "2016-12-06T16:41:06.991Z"
          }
        })
    }

    #[test]
    fn ecs_statuses_map_to_changes() {
        assert_eq!(ecs_change(&ecs("ACTIVE", true)).unwrap().2, EcsChange::Active);
        assert_eq!(ecs_change(&ecs("ACTIVE", false)).unwrap().2, EcsChange::Transitional);
        assert_eq!(ecs_change(&ecs("DRAINING", true)).unwrap().2, EcsChange::Draining);
        assert_eq!(ecs_change(&ecs("INACTIVE", false)).unwrap().2, EcsChange::Deregistered);
        assert_eq!(
            ecs_change(&ecs("REGISTERING", false)).unwrap().2,
            EcsChange::Transitional
        );
        let mut bad = ecs("ACTIVE", true);
        bad["detail"]["ec2InstanceId"] = json!("i-$(id)");
        assert!(matches!(ecs_change(&bad), Err(EventError::Detail { .. })));
        assert!(matches!(ecs_change(&launch()), Err(EventError::Unsupported { .. })));
    }

    fn ec2(detail_type: &str, detail: Value) -> Value {
        json!({
          "version": "0", "id": "1e5527d7-bb36-4607-3370-4164db56a40e",
          "detail-type": detail_type, "source": "aws.ec2",
          "account": "123456789012", "time": "2026-11-21T00:00:00Z", "region": "us-east-1",
          "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"],
          "detail": detail
        })
    }

    #[test]
    fn ec2_notices_map_to_what_they_ask() {
        let spot = ec2(
            SPOT_WARNING_DETAIL_TYPE,
            json!({"instance-id": "i-0123456789abcdef0", "instance-action": "terminate"}),
        );
        let (_, id, n) = ec2_notice(&spot).unwrap();
        assert_eq!(id, "i-0123456789abcdef0");
        assert_eq!(
            n,
            Ec2Notice::SpotInterruption {
                action: "terminate".into(),
                warned_unix: Some(1_795_219_200)
            }
        );
        let reb = ec2(REBALANCE_DETAIL_TYPE, json!({"instance-id": "i-0123456789abcdef0"}));
        assert_eq!(ec2_notice(&reb).unwrap().2, Ec2Notice::RebalanceRecommendation);
        for (state, want) in [
            ("running", Ec2Notice::Running),
            ("stopping", Ec2Notice::Leaving("stopping".into())),
            ("shutting-down", Ec2Notice::Leaving("shutting-down".into())),
            ("terminated", Ec2Notice::Leaving("terminated".into())),
            ("pending", Ec2Notice::Other("pending".into())),
        ] {
            let e = ec2(
                STATE_CHANGE_DETAIL_TYPE,
                json!({"instance-id": "i-0123456789abcdef0", "state": state}),
            );
            assert_eq!(ec2_notice(&e).unwrap().2, want, "{state}");
        }
    }

    #[test]
    fn bad_ec2_notices_are_errors() {
        let e = ec2(
            SPOT_WARNING_DETAIL_TYPE,
            json!({"instance-id": "i-0123456789abcdef0", "instance-action": "reboot"}),
        );
        assert!(matches!(ec2_notice(&e), Err(EventError::Detail { .. })));
        let e = ec2(
            SPOT_WARNING_DETAIL_TYPE,
            json!({"instance-id": "i-1; reboot", "instance-action": "stop"}),
        );
        assert!(matches!(ec2_notice(&e), Err(EventError::Detail { .. })));
        let e = ec2(STATE_CHANGE_DETAIL_TYPE, json!({"instance-id": "i-0123456789abcdef0"}));
        assert!(matches!(ec2_notice(&e), Err(EventError::Detail { .. })));
        assert!(matches!(ec2_notice(&launch()), Err(EventError::Unsupported { .. })));
        assert!(matches!(ec2_notice(&json!([])), Err(EventError::Envelope(_))));
    }

    fn health(detail: Value) -> Value {
        json!({
          "version": "0", "id": "7fb65329-1628-4cf3-a740-95fg457h1402",
          "detail-type": "AWS Health Event", "source": "aws.health",
          "account": "123456789012", "time": "2026-11-21T00:00:00Z", "region": "us-east-1",
          "resources": ["i-0123456789abcdef0"], "detail": detail
        })
    }

    #[test]
    fn a_health_scheduled_change_names_its_instances_and_its_start() {
        let e = health(json!({
            "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/x",
            "service": "EC2", "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "eventTypeCategory": "scheduledChange", "startTime": "Sat, 05 Jun 2016 15:10:09 GMT",
            "affectedEntities": [{"entityValue": "i-0123456789abcdef0"}, {"entityValue": "h-0123456789abcdef0"}]
        }));
        let (_, ids, n) = scheduled_change(&e).unwrap();
        assert_eq!(ids, vec!["i-0123456789abcdef0".to_string()]);
        assert_eq!(
            n,
            Ec2Notice::ScheduledChange {
                code: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into(),
                starts_unix: Some(1_465_139_409),
                closed: false,
            }
        );
        // The same change, over: closed, or its instance RESOLVED.
        let mut over = e.clone();
        over["detail"]["statusCode"] = json!("closed");
        assert!(matches!(
            scheduled_change(&over).unwrap().2,
            Ec2Notice::ScheduledChange { closed: true, .. }
        ));
        let mut resolved = e.clone();
        resolved["detail"]["affectedEntities"][0]["statusCode"] = json!("RESOLVED");
        assert!(scheduled_change(&resolved).unwrap().1.is_empty());
        let mut e2 = e.clone();
        e2["detail"]["startTime"] = json!("2016-06-05T15:10:09Z");
        assert_eq!(scheduled_change(&e2).unwrap().2, n);
        let mut bad = e.clone();
        bad["detail"]["startTime"] = json!("soon");
        assert!(matches!(scheduled_change(&bad), Err(EventError::Detail { .. })));
        let mut bad = e.clone();
        bad["detail"]["eventTypeCategory"] = json!("issue");
        assert!(matches!(scheduled_change(&bad), Err(EventError::Detail { .. })));
        assert!(matches!(
            scheduled_change(&launch()),
            Err(EventError::Unsupported { .. })
        ));
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        assert!(matches!(lifecycle_intent(&json!("x")), Err(EventError::Envelope(_))));
        assert!(matches!(lifecycle_intent(&json!({})), Err(EventError::Envelope(_))));
        let mut e = launch();
        e["detail-type"] = json!("EC2 Instance State-change Notification");
        assert!(matches!(lifecycle_intent(&e), Err(EventError::Unsupported { .. })));
        let mut e = launch();
        e["detail"]["EC2InstanceId"] = json!(42);
        assert!(matches!(lifecycle_intent(&e), Err(EventError::Detail { .. })));
        let mut e = launch();
        e["detail"]["EC2InstanceId"] = json!("i-1; reboot");
        assert!(matches!(lifecycle_intent(&e), Err(EventError::Detail { .. })));
        let mut e = launch();
        e["detail"]["LifecycleTransition"] = json!(TERMINATING);
        assert!(matches!(lifecycle_intent(&e), Err(EventError::Detail { .. })));
        let mut e = launch();
        e["detail"] = json!({"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": "mgr"});
        assert_eq!(lifecycle_intent(&e), Err(EventError::TestNotification));
    }
}
