//! What a drain said, noted and told: the services it cannot place, the budgets it waits
//! for, broke or could not read, a drain out of time (action events, metrics, warnings).

use super::held::{Held, Operators};
use super::*;
use crate::announce::BlockedService;

impl<F, R, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Tells, once per retirement, that the drain found services it cannot place (an action
    /// event, a metric, a warning). True: told now.
    pub(super) async fn tell_blocked(&self, held: &mut Held<'_>) -> bool {
        if held.blocked.is_empty() || held.blocked_told {
            return false;
        }
        held.blocked_told = true;
        let id = held.alive.intent.instance_id().to_string();
        warn!(step = "drain", outcome = "blocked", services = %BlockedService::names(&held.blocked),
              reasons = %held.blocked.iter().map(|b| b.reason.as_str()).collect::<Vec<_>>().join("; "),
              proceed = self.cfg.blocked_drain_proceeds,
              "the swarm cannot place tasks of the leaving node's services");
        metric(
            &self.cfg.cluster_name,
            held.role.as_str(),
            "DrainsBlocked",
            1.0,
            "Count",
        );
        let event = ActionEvent::drain_blocked(
            &self.cfg.cluster_name,
            &id,
            held.role.as_str(),
            held.blocked.clone(),
            self.cfg.blocked_drain_proceeds,
        );
        self.announce(event).await;
        true
    }
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// What draining the node would do to each of its services (read-only, through a manager):
    /// where its tasks could go, its budget. Empty when no manager can say.
    pub(super) async fn preview_services(
        &self,
        ops: &mut Operators,
        node_id: &str,
    ) -> Vec<plan::preview::ServicePreview> {
        let env = [("NODE_ID", node_id.to_string())];
        match self
            .on_operator(ops, &env, scripts::RETIRE_PREVIEW, self.cfg.command_timeout, "preview")
            .await
        {
            Ok(r) => {
                let previews = plan::preview::preview(&plan::preview::PreviewInput::parse(&r.stdout));
                for p in &previews {
                    info!(step = "preview", service = %p.service, placement = p.placement, reason = %p.reason,
                          budget = p.budget.as_deref().unwrap_or("none"));
                }
                previews
            }
            Err(e) => {
                warn!(step = "preview", outcome = "failed", error = %e);
                vec![]
            }
        }
    }
}

impl<F, R, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// What a drain command said of the services' budgets: the ones it waits for (logged when
    /// they change), the ones it broke (an involuntary disruption: told), the labels it ignored
    /// (told once).
    pub(super) async fn note_budgets(&self, held: &mut Held<'_>, stdout: &str) {
        let short = BlockedService::budget_waits_of_output(stdout);
        if !short.is_empty() && short != held.budget_short {
            info!(step = "drain", outcome = "budget-wait", services = %BlockedService::with_reasons(&short),
                  "the drain waits: it would take these services below their budget");
            metric(&self.cfg.cluster_name, held.role.as_str(), "BudgetWaits", 1.0, "Count");
        }
        held.budget_short = short;
        let broken = BlockedService::budgets_of_output(stdout, "budget_broken");
        if !broken.is_empty() {
            let cause = if DrainSaid::of(stdout).broken_by_stuck {
                "no task of it is on its way to running: waiting cannot keep it, the drain goes on"
            } else {
                "an involuntary disruption cannot wait"
            };
            self.tell_budget_broken(held, broken, cause).await;
        }
        let invalid = BlockedService::invalid_budgets_of_output(stdout);
        if !invalid.is_empty() && !held.budget_invalid_told {
            held.budget_invalid_told = true;
            warn!(step = "drain", outcome = "budget-invalid", services = %BlockedService::with_reasons(&invalid),
                  "unreadable disruption budget labels are ignored");
            let id = held.alive.intent.instance_id().to_string();
            self.announce(ActionEvent::budget_invalid(&self.cfg.cluster_name, &id, invalid))
                .await;
        }
    }

    /// What a drain command answered: its blocked services and budgets noted (and told), and
    /// (tasks still running, services short), u32::MAX where it could not say.
    pub(super) async fn note_drain(&self, held: &mut Held<'_>, stdout: &str) -> (u32, u32) {
        held.blocked = BlockedService::of_output(stdout);
        self.note_budgets(held, stdout).await;
        let said = DrainSaid::of(stdout);
        (said.remaining.unwrap_or(u32::MAX), said.pending.unwrap_or(u32::MAX))
    }

    /// Tells, once per retirement, that services went below their budget, and why.
    async fn tell_budget_broken(&self, held: &mut Held<'_>, broken: Vec<BlockedService>, cause: &str) {
        if held.budget_broken_told {
            return;
        }
        held.budget_broken_told = true;
        warn!(step = "drain", outcome = "budget-broken", services = %BlockedService::with_reasons(&broken), %cause,
              "services go below their disruption budget");
        metric(
            &self.cfg.cluster_name,
            held.role.as_str(),
            "BudgetsBroken",
            1.0,
            "Count",
        );
        let id = held.alive.intent.instance_id().to_string();
        let event = ActionEvent::budget_broken(&self.cfg.cluster_name, &id, held.role.as_str(), broken, cause);
        self.announce(event).await;
    }

    /// The drain ran out of time (what it left: `held.last_drain`): said, the budgets it
    /// waited for told broken (the node goes undrained), and kept for the action event.
    pub(super) async fn drain_timed_out(&self, held: &mut Held<'_>) {
        warn!(step = "drain", outcome = "timeout", left = %held.last_drain, "drain timed out; removing anyway");
        if !held.budget_short.is_empty() {
            // Removed undrained: its tasks stop with it, below the budgets waited for.
            let short = std::mem::take(&mut held.budget_short);
            self.tell_budget_broken(held, short, "the drain timed out waiting for the budget")
                .await;
        }
        let began = held.drain_began.unwrap_or_else(Instant::now);
        held.drain_timed_out = Some((began.elapsed(), held.last_drain.clone()));
    }
}
