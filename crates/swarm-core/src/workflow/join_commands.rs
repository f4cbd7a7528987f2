//! The join's own commands: init the swarm, join through a manager (publishing the tokens
//! again when they are missing), wait until the node is Ready and label it.

use super::*;

impl<F, R: Remote, D, P: Parameters, A, Q> Lifecycle<F, R, D, P, A, Q> {
    pub(super) async fn init(
        &self,
        me: &Joiner<'_>,
        m: &Member,
        generation: u32,
        held: bool,
        end: Instant,
    ) -> Result<(), Retry> {
        let Joiner { id, ip, labels } = *me;
        let ip = ip.ok_or(Retry::Again(Again::NoPrivateIp))?;
        if !held {
            let name = format!("{}/{}", self.cfg.lock_path(&m.cluster), generation);
            let won = self
                .params
                .create(&name, &LockEntry::value(id, unix_now()))
                .await
                .map_err(retry)?;
            if !won {
                info!(
                    step = "init-lock",
                    outcome = "lost",
                    generation,
                    "another manager initialises the swarm"
                );
                return Err(Retry::Again(Again::InitLockTaken));
            }
            info!(step = "init-lock", outcome = "acquired", generation);
        }
        let cmds = script_commands(
            &[
                ("ADVERTISE_ADDR", ip.to_string()),
                ("TOKEN_PREFIX", self.token_prefix(&m.cluster)),
                ("TOKEN_KMS_KEY", self.cfg.token_kms_key.clone().unwrap_or_default()),
                shared_storage_var(&self.cfg),
            ],
            scripts::INIT,
        );
        let r = self.run_raw(id, cmds, USUAL_JOIN, "swarm init").await?;
        if r.exit() == Some(ScriptExit::Retiring) {
            return Err(Retry::Retiring);
        }
        unfit(&r)?;
        if !r.ok() {
            return Err(Retry::Again(Again::Failed {
                what: "swarm init".into(),
                on: id.into(),
                result: r.summary(),
            }));
        }
        info!(step = "init", outcome = "ok");
        metric(&m.cluster, m.role.as_str(), "SwarmInits", 1.0, "Count");
        let node_id = NodeSaid::of(&r.stdout).node_id.map(str::to_string);
        self.verify_ready(id, node_id, id, labels, end).await
    }
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    pub(super) async fn join_via(
        &self,
        me: &Joiner<'_>,
        m: &Member,
        manager: &str,
        manager_ip: Ipv4Addr,
        end: Instant,
    ) -> Result<(), Retry> {
        let Joiner { id, ip, labels } = *me;
        let ip = ip.ok_or(Retry::Again(Again::NoPrivateIp))?;
        let cmds = script_commands(
            &[
                ("MANAGER_ADDR", manager_ip.to_string()),
                ("ADVERTISE_ADDR", ip.to_string()),
                ("TOKEN_PARAMETER", self.cfg.token_parameter(&m.cluster, m.role)),
                shared_storage_var(&self.cfg),
            ],
            scripts::JOIN,
        );
        let mut r = self.run_raw(id, cmds.clone(), USUAL_JOIN, "swarm join").await?;
        if r.exit() == Some(ScriptExit::TokenMissing) {
            // Token missing or rotated: publish it again from the manager, then retry once.
            info!(step = "publish-tokens", outcome = "needed", via = manager);
            let publish = script_commands(
                &[
                    ("TOKEN_PREFIX", self.token_prefix(&m.cluster)),
                    ("TOKEN_KMS_KEY", self.cfg.token_kms_key.clone().unwrap_or_default()),
                ],
                scripts::PUBLISH_TOKENS,
            );
            self.run_one(manager, publish, "publish join tokens").await?;
            r = self.run_raw(id, cmds, USUAL_JOIN, "swarm join").await?;
        }
        if r.exit() == Some(ScriptExit::Retiring) {
            return Err(Retry::Retiring);
        }
        unfit(&r)?;
        if !r.ok() {
            return Err(Retry::Again(Again::JoinRefused {
                manager: manager.into(),
                result: r.summary(),
            }));
        }
        info!(step = "join", outcome = "ok", via = manager, role = %m.role);
        let node_id = NodeSaid::of(&r.stdout).node_id.map(str::to_string);
        self.verify_ready(id, node_id, manager, labels, end).await
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    fn token_prefix(&self, cluster: &str) -> String {
        format!("{}/{}/join-token", self.cfg.parameter_prefix, cluster)
    }
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Waits on a manager until the node is Ready, and labels it with its instance id and
    /// `labels` (`plan::labels::encode`).
    pub(super) async fn verify_ready(
        &self,
        id: &str,
        node_id: Option<String>,
        on: &str,
        labels: &str,
        end: Instant,
    ) -> Result<(), Retry> {
        let node_id = node_id
            .filter(|n| crate::safe::is_node_id(n))
            .ok_or(Retry::Again(Again::NodeIdUnknown))?;
        let wait = end
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(60))
            .min(self.cfg.script_wait_max())
            .as_secs()
            .max(1);
        let cmds = script_commands(
            &[
                ("NODE_ID", node_id.clone()),
                ("INSTANCE_ID", id.to_string()),
                ("WAIT_SECONDS", wait.to_string()),
                ("NODE_LABELS", labels.to_string()),
            ],
            scripts::NODE_READY,
        );
        self.run_one(on, cmds, "wait for node Ready").await?;
        info!(step = "ready", outcome = "ok", node_id = %node_id, via = on);
        Ok(())
    }
}

/// The instance a join or init is for: its id, its address and its labels (encoded).
#[derive(Clone, Copy)]
pub(super) struct Joiner<'a> {
    pub id: &'a str,
    pub ip: Option<Ipv4Addr>,
    pub labels: &'a str,
}

/// A join or init that the instance can never run: its daemon's firewall backend
/// (`refuse_nftables`), or its shared storage not mounted (`require_shared_storage`).
pub(super) fn unfit(r: &CommandResult) -> Result<(), Retry> {
    if matches!(
        r.exit(),
        Some(ScriptExit::FirewallBackend | ScriptExit::SharedStorageMissing)
    ) {
        return Err(Retry::Unfit(r.summary()));
    }
    Ok(())
}

/// The scripts' SHARED_STORAGE: the path every node mounts the cluster's file system at (or
/// empty: none), checked before a node joins.
pub(super) fn shared_storage_var(cfg: &crate::Config) -> (&'static str, String) {
    ("SHARED_STORAGE", cfg.shared_storage.clone().unwrap_or_default())
}
