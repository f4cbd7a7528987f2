//! The ECS function's entry: a container instance's state change becomes an intent.

use super::*;

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Handles an ECS "Container Instance State Change": the instance's group (and so its
    /// cluster and role) is looked up; instances outside any cluster get one log line.
    pub async fn handle_ecs(&self, raw: &Value, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        let (meta, instance_id, change) = match event::ecs_change(raw) {
            Ok(x) => x,
            Err(e) => {
                error!(step = "parse", outcome = "invalid", error = %e, "event rejected");
                return Ok(Outcome::new(OutcomeKind::Invalid, None, e.to_string()));
            }
        };
        let span = info_span!("ecs", event_id = %meta.id, instance_id = %instance_id, change = ?change);
        async {
            if change == event::EcsChange::Transitional {
                info!(step = "parse", outcome = "ignored", "transitional status");
                return Ok(Outcome::new(
                    OutcomeKind::Ignored,
                    Some(&instance_id),
                    "transitional status",
                ));
            }
            let groups = self.fleet.instance_groups(std::slice::from_ref(&instance_id)).await?;
            let Some((group, member)) = groups.into_iter().next() else {
                info!(
                    step = "group",
                    outcome = "ignored",
                    "instance is in no Auto Scaling group"
                );
                return Ok(Outcome::new(
                    OutcomeKind::Ignored,
                    Some(&instance_id),
                    "instance is in no Auto Scaling group",
                ));
            };
            let intent = match change {
                event::EcsChange::Active => Intent::Join {
                    instance_id,
                    group,
                    action: None,
                },
                event::EcsChange::Draining => Intent::Drain { instance_id, group },
                // Deregistered from ECS but still in service: an agent re-registering (an
                // ACTIVE follows and reactivates it) or taken off ECS by hand. Its tasks move,
                // the node stays; it leaves the swarm when its instance goes (terminate hook,
                // or the reconcile).
                event::EcsChange::Deregistered if member.lifecycle_state == LifecycleState::InService => {
                    info!(
                        step = "deregistered",
                        outcome = "drain-only",
                        "instance still in service: drained, kept"
                    );
                    Intent::Drain { instance_id, group }
                }
                event::EcsChange::Deregistered | event::EcsChange::Transitional => Intent::Retire {
                    instance_id,
                    group,
                    action: None,
                },
            };
            self.handle_intent(intent, deadline).await
        }
        .instrument(span)
        .await
    }
}
