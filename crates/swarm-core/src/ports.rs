//! The ports the decision logic drives. Real adapters live in swarm-aws; the in-memory
//! ones used by the domain tests live in `crate::memory`.
#![allow(async_fn_in_trait)]

use std::time::Duration;

use thiserror::Error;

use crate::event::LifecycleAction;
use crate::model::{Group, GroupInstance, Instance, ManagerRecord};

#[derive(Debug, Clone, Error, PartialEq)]
pub enum PortError {
    /// The lifecycle action is no longer waiting (completed, timed out, instance gone).
    #[error("no active lifecycle action for {0}")]
    NoActiveAction(String),
    /// An instance is not (or no longer) reachable through SSM.
    #[error("instance {0} is not online in SSM")]
    NotOnline(String),
    #[error("{operation}: {message}")]
    Aws { operation: String, message: String },
    /// AWS refused the caller (AccessDenied and kin): asking again cannot succeed, so it is
    /// never retried; the permission is missing from the template.
    #[error("{operation} denied: {message}")]
    Denied { operation: String, message: String },
    /// AWS rejected the request itself (validation, a named resource that does not exist):
    /// the same request cannot succeed, so it is never retried either.
    #[error("{operation} rejected: {message}")]
    Invalid { operation: String, message: String },
}

impl PortError {
    /// Whether asking again (or observing again) can change the answer. Throttling and
    /// transient faults are retried by the SDK's retry configuration before they get here.
    pub fn is_final(&self) -> bool {
        matches!(self, PortError::Denied { .. } | PortError::Invalid { .. })
    }
}

impl PortError {
    pub fn aws(operation: &str, message: impl ToString) -> Self {
        PortError::Aws {
            operation: operation.to_string(),
            message: message.to_string(),
        }
    }
}

// The answers the ports carry are the domain's (model): the planners read them without the ports.
pub use crate::model::{ActionResult, CommandResult, CommandStatus};

pub type PortResult<T> = Result<T, PortError>;

/// Auto Scaling and EC2.
pub trait Fleet {
    async fn describe_groups(&self, names: &[String]) -> PortResult<Vec<Group>>;
    /// Every group carrying `tag_key = value`.
    async fn groups_tagged(&self, tag_key: &str, value: &str) -> PortResult<Vec<Group>>;
    /// (instance, group) for each instance that belongs to an Auto Scaling group.
    async fn instance_groups(&self, ids: &[String]) -> PortResult<Vec<(String, GroupInstance)>>;
    /// (hook name, transition) of a group's lifecycle hooks.
    async fn lifecycle_hooks(&self, group: &str) -> PortResult<Vec<(String, String)>>;
    /// Instances by id; ids that do not exist are simply absent from the answer.
    async fn describe_instances(&self, ids: &[String]) -> PortResult<Vec<Instance>>;
    /// (instance, unix start) of every scheduled change (retirement, reboot, maintenance) that
    /// is neither completed nor canceled, for the running instances of the account's region.
    async fn scheduled_changes(&self) -> PortResult<Vec<(String, u64)>>;
    async fn complete_action(&self, action: &LifecycleAction, result: ActionResult) -> PortResult<()>;
    async fn record_heartbeat(&self, action: &LifecycleAction) -> PortResult<()>;
    /// Terminates an instance through its Auto Scaling group, so its terminate hook holds it
    /// (the operator's retire); `decrement`: the group shrinks instead of replacing it.
    async fn terminate_in_group(&self, instance_id: &str, decrement: bool) -> PortResult<()>;
}

/// How long a command usually takes, sent to reported, when its kind says nothing longer.
pub const USUAL_COMMAND: Duration = Duration::from_millis(800);
/// A join or an init: the AWS CLI reading (or writing) the token, `docker swarm join` (or
/// `init`), a manager seeing the node Ready — ~1.2 s alone on the local cloud.
pub const USUAL_JOIN: Duration = Duration::from_secs(2);

/// SSM Run Command (AWS-RunShellScript) and the agents' ping status.
pub trait Remote {
    /// The subset of `ids` whose SSM agent is Online.
    async fn online(&self, ids: &[String]) -> PortResult<Vec<String>>;
    /// Runs `commands` on every instance and waits for all results (bounded by `timeout`);
    /// their status is first looked at after `usual`, how long such a command usually takes.
    async fn run(
        &self,
        ids: &[String],
        commands: Vec<String>,
        timeout: Duration,
        usual: Duration,
        comment: &str,
    ) -> PortResult<Vec<CommandResult>>;
    /// Sends `commands` to the instances (at most 50) and returns the command's id at once (a
    /// drain or a retirement that outlives the invocation: its results are read by a later one).
    async fn send(&self, ids: &[String], commands: Vec<String>, timeout: Duration, comment: &str)
        -> PortResult<String>;
    /// The command's result on the instance once it is final; None while it runs.
    async fn result(&self, command_id: &str, id: &str) -> PortResult<Option<CommandResult>>;
    /// `result` on each of `ids` with one call; Invalid when the first does not know the
    /// command.
    async fn results(&self, command_id: &str, ids: &[String]) -> PortResult<Vec<Option<CommandResult>>>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecordChange {
    Upsert(ManagerRecord),
    Delete(ManagerRecord),
}

/// The change id `Dns::change` returns when a DELETE found nothing to delete.
pub const UNCHANGED: &str = "unchanged";

/// Route 53.
pub trait Dns {
    async fn manager_records(&self, zone: &str, name: &str) -> PortResult<Vec<ManagerRecord>>;
    /// Submits one change batch; returns its change id, or `UNCHANGED` when the batch only
    /// deletes and a record to delete was not there (exactly as given: name, set, value, TTL).
    async fn change(&self, zone: &str, name: &str, changes: Vec<RecordChange>) -> PortResult<String>;
    async fn is_insync(&self, change_id: &str) -> PortResult<bool>;
    /// Every record set at or under `suffix`, of any type (the service names and their
    /// owners, and whatever else is there).
    async fn records_under(&self, zone: &str, suffix: &str) -> PortResult<Vec<crate::plan::service_dns::ZoneEntry>>;
    /// Submits one batch of service-name changes (within Route 53's request limits:
    /// `service_dns::batches`); returns its change id.
    async fn change_entries(&self, zone: &str, changes: &[crate::plan::service_dns::ZoneChange]) -> PortResult<String>;
}

/// SSM Parameter Store, used for the init lock (never for reading tokens).
pub trait Parameters {
    /// Conditional create: Ok(false) when the parameter exists already.
    async fn create(&self, name: &str, value: &str) -> PortResult<bool>;
    /// (name, value) of every parameter under `path`.
    async fn list(&self, path: &str) -> PortResult<Vec<(String, String)>>;
    /// Deletes the parameters (those already gone are no error).
    async fn delete(&self, names: &[String]) -> PortResult<()>;
}

/// SQS: the drain checks a retirement leaves for later invocations (the drain-check function).
pub trait Checks {
    /// Sends one check, delivered after `delay` (SQS DelaySeconds: at most 15 minutes).
    async fn later(&self, body: &str, delay: Duration) -> PortResult<()>;
}

/// EventBridge: action events for people (`crate::announce`).
pub trait Announce {
    /// Puts one event on `bus` (a name or an ARN). Err also when EventBridge took the call but
    /// refused the entry (PutEvents answers per entry).
    async fn announce(&self, bus: &str, event: &crate::announce::ActionEvent) -> PortResult<()>;
}
