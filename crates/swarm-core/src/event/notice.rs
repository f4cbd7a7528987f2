//! EC2's notices about an instance outside any lifecycle hook (Spot warnings, rebalance
//! recommendations, state changes) and AWS Health's scheduled changes of EC2.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;

/// `detail` of the aws.ec2 events about one instance (the fields used; others accepted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstanceNoticeDetail {
    pub instance_id: String,
    /// Spot warning: terminate, stop or hibernate.
    #[serde(default)]
    pub instance_action: Option<String>,
    /// State-change notification: pending, running, stopping, stopped, shutting-down, terminated.
    #[serde(default)]
    pub state: Option<String>,
}

/// What EC2 says of an instance outside any lifecycle hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ec2Notice {
    /// The Spot service takes the instance back, two minutes after the warning (`warned_unix`,
    /// the event's time); `action` is terminate, stop or hibernate (which starts at once).
    SpotInterruption { action: String, warned_unix: Option<u64> },
    /// The Spot instance is at elevated risk of interruption.
    RebalanceRecommendation,
    /// The instance is going or gone: stopping, stopped, shutting-down, terminated.
    Leaving(String),
    /// The instance runs (again).
    Running,
    /// pending, or a state this version does not know: nothing to do.
    Other(String),
    /// AWS Health announces a scheduled change (retirement, reboot, maintenance) beginning at
    /// `starts_unix`; the group replaces the instance then. `closed`: the event's statusCode
    /// says it is over (done or cancelled): nothing is left to do.
    ScheduledChange {
        code: String,
        starts_unix: Option<u64>,
        closed: bool,
    },
}

/// Parses an aws.ec2 Spot warning, rebalance recommendation or state-change notification.
pub fn ec2_notice(raw: &Value) -> Result<(EventMeta, String, Ec2Notice), EventError> {
    let known = [
        SPOT_WARNING_DETAIL_TYPE,
        REBALANCE_DETAIL_TYPE,
        STATE_CHANGE_DETAIL_TYPE,
    ];
    let (ev, meta) = accept(raw, "aws.ec2", &known)?;
    let bad = |reason: String| EventError::Detail {
        detail_type: meta.detail_type.clone(),
        reason,
    };
    let d: InstanceNoticeDetail = serde_json::from_value(ev.detail.clone()).map_err(|e| bad(e.to_string()))?;
    if !crate::safe::is_instance_id(&d.instance_id) {
        return Err(bad(format!("instance-id {:?} is not an instance id", d.instance_id)));
    }
    let time = ev.time.and_then(|t| u64::try_from(t.timestamp()).ok());
    let notice = match ev.detail_type.as_str() {
        SPOT_WARNING_DETAIL_TYPE => {
            let action = d
                .instance_action
                .ok_or_else(|| bad("instance-action is missing".into()))?;
            if !matches!(action.as_str(), "terminate" | "stop" | "hibernate") {
                return Err(bad(format!(
                    "instance-action {action:?} is not terminate, stop or hibernate"
                )));
            }
            Ec2Notice::SpotInterruption {
                action,
                warned_unix: time,
            }
        }
        REBALANCE_DETAIL_TYPE => Ec2Notice::RebalanceRecommendation,
        _ => match d.state.ok_or_else(|| bad("state is missing".into()))?.as_str() {
            "running" => Ec2Notice::Running,
            s @ ("stopping" | "stopped" | "shutting-down" | "terminated") => Ec2Notice::Leaving(s.to_string()),
            other => Ec2Notice::Other(other.chars().take(32).collect()),
        },
    };
    Ok((meta, d.instance_id, notice))
}

/// `detail` of an "AWS Health Event" (the fields used; others accepted).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthDetail {
    service: String,
    event_type_category: String,
    event_type_code: String,
    #[serde(default)]
    start_time: Option<String>,
    /// "upcoming", "open" or "closed" (AWS Health API, Event.statusCode: "The most recent
    /// status of the event"); a later event about the same change carries "closed".
    #[serde(default)]
    status_code: Option<String>,
    #[serde(default)]
    affected_entities: Vec<AffectedEntity>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AffectedEntity {
    entity_value: String,
    /// AffectedEntity.statusCode: IMPAIRED, UNIMPAIRED, UNKNOWN, PENDING or RESOLVED.
    #[serde(default)]
    status_code: Option<String>,
}

/// Parses an AWS Health scheduled change of EC2: the affected instances (entities that are
/// not instances, such as dedicated hosts, are left out) and what it says of them.
pub fn scheduled_change(raw: &Value) -> Result<(EventMeta, Vec<String>, Ec2Notice), EventError> {
    let (ev, meta) = accept(raw, "aws.health", &[HEALTH_DETAIL_TYPE])?;
    let bad = |reason: String| EventError::Detail {
        detail_type: meta.detail_type.clone(),
        reason,
    };
    let d: HealthDetail = serde_json::from_value(ev.detail).map_err(|e| bad(e.to_string()))?;
    if (d.service.as_str(), d.event_type_category.as_str()) != ("EC2", "scheduledChange") {
        return Err(bad(format!(
            "{:.20} {:.20} is not an EC2 scheduled change",
            d.service, d.event_type_category
        )));
    }
    let starts_unix = match d.start_time.as_deref() {
        None => None,
        Some(t) => Some(health_time(t).ok_or_else(|| bad(format!("startTime {t:.40?} is not a date")))?),
    };
    // An entity the change is done with (RESOLVED) is left alone.
    let ids = d
        .affected_entities
        .into_iter()
        .filter(|e| e.status_code.as_deref() != Some("RESOLVED"))
        .map(|e| e.entity_value)
        .filter(|v| crate::safe::is_instance_id(v))
        .collect();
    let code = d.event_type_code.chars().take(100).collect();
    let closed = d.status_code.as_deref() == Some("closed");
    Ok((
        meta,
        ids,
        Ec2Notice::ScheduledChange {
            code,
            starts_unix,
            closed,
        },
    ))
}

/// AWS Health's times: "Sat, 05 Jun 2016 15:10:09 GMT" in its samples (a Sunday: the weekday
/// is not checked); RFC 3339 accepted.
fn health_time(t: &str) -> Option<u64> {
    let dated = match t.split_once(", ") {
        Some((day, rest)) if day.len() == 3 && day.chars().all(|c| c.is_ascii_alphabetic()) => rest,
        _ => t,
    };
    chrono::DateTime::parse_from_rfc2822(dated)
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(t))
        .ok()
        .and_then(|d| u64::try_from(d.timestamp()).ok())
}
