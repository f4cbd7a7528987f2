//! Ports a function is built without, where its handler's type still names them. A port the
//! handler's bounds do not name is not built at all (`()`, e.g. the drain check's Route 53:
//! each room's `impl` names the ports it uses, so a path to another would not compile); these
//! stand in for the rest. Its binary then holds none of their AWS calls (the linker drops what
//! no path reaches), and `make lint` (scripts/reachable-actions.py) checks each binary's calls
//! against its role; a path that reaches one anyway is refused as AWS would refuse the role
//! (Denied: never retried).

use std::time::Duration;

use crate::event::LifecycleAction;
use crate::model::{Group, GroupInstance, Instance};
use crate::ports::{ActionResult, Checks, Fleet, Parameters, PortError, PortResult};

/// A port this function does not have; the name says which (in the refusal).
#[derive(Debug, Clone, Copy)]
pub struct Absent(pub &'static str);

impl Absent {
    fn refuse<T>(&self, operation: &str) -> PortResult<T> {
        Err(PortError::Denied {
            operation: operation.to_string(),
            message: format!("this function is built without {}", self.0),
        })
    }
}

impl Parameters for Absent {
    async fn create(&self, _: &str, _: &str) -> PortResult<bool> {
        self.refuse("PutParameter")
    }
    async fn list(&self, _: &str) -> PortResult<Vec<(String, String)>> {
        self.refuse("GetParametersByPath")
    }
    async fn delete(&self, _: &[String]) -> PortResult<()> {
        self.refuse("DeleteParameters")
    }
}

impl Checks for Absent {
    async fn later(&self, _: &str, _: Duration) -> PortResult<()> {
        self.refuse("SendMessage")
    }
}

/// The fleet of a function whose events carry no lifecycle action (instance notices,
/// scheduled changes, ECS): the reads of `F`, and no completion, heartbeat or termination.
pub struct WithoutLifecycleActions<F>(pub F);

impl<F> WithoutLifecycleActions<F> {
    fn refuse<T>(operation: &str) -> PortResult<T> {
        Absent("lifecycle actions").refuse(operation)
    }
}

impl<F: Fleet> Fleet for WithoutLifecycleActions<F> {
    async fn describe_groups(&self, names: &[String]) -> PortResult<Vec<Group>> {
        self.0.describe_groups(names).await
    }
    async fn groups_tagged(&self, tag_key: &str, value: &str) -> PortResult<Vec<Group>> {
        self.0.groups_tagged(tag_key, value).await
    }
    async fn instance_groups(&self, ids: &[String]) -> PortResult<Vec<(String, GroupInstance)>> {
        self.0.instance_groups(ids).await
    }
    async fn lifecycle_hooks(&self, group: &str) -> PortResult<Vec<(String, String)>> {
        self.0.lifecycle_hooks(group).await
    }
    async fn describe_instances(&self, ids: &[String]) -> PortResult<Vec<Instance>> {
        self.0.describe_instances(ids).await
    }
    async fn scheduled_changes(&self) -> PortResult<Vec<(String, u64)>> {
        self.0.scheduled_changes().await
    }
    async fn complete_action(&self, _: &LifecycleAction, _: ActionResult) -> PortResult<()> {
        Self::refuse("CompleteLifecycleAction")
    }
    async fn record_heartbeat(&self, _: &LifecycleAction) -> PortResult<()> {
        Self::refuse("RecordLifecycleActionHeartbeat")
    }
    async fn terminate_in_group(&self, _: &str, _: bool) -> PortResult<()> {
        Self::refuse("TerminateInstanceInAutoScalingGroup")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_absent_port_refuses_as_a_role_without_the_grant_would() {
        let e = Parameters::list(&Absent("parameters"), "/x").await.unwrap_err();
        assert!(e.is_final(), "never retried: {e}");
        assert_eq!(
            e.to_string(),
            "GetParametersByPath denied: this function is built without parameters"
        );
    }
}
