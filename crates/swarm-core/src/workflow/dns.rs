//! The manager record: one change submitted and waited for until INSYNC, and a DELETE that
//! finds what is there; a leaving instance's values in the service names. Route 53 only.

use super::held::Held;
use super::*;
use crate::plan::service_dns::{ZoneChange, ZoneEntry};

impl<F: Fleet, R, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The manager's records out of the record set, each INSYNC, then the hold begins.
    pub(super) async fn remove_manager_records(
        &self,
        held: &mut Held<'_>,
        intent: &Intent,
        m: &Member,
        records: Vec<ManagerRecord>,
        end: Instant,
    ) -> Result<(), PortError> {
        let name = m.dns_name.clone().unwrap_or_default();
        let mut removed = false;
        for r in records {
            removed |= self
                .while_alive(&held.alive, self.remove_record(&name, intent, r, end))
                .await?;
        }
        held.acted |= removed;
        if removed {
            info!(step = "dns-remove", outcome = "insync");
            metric(&m.cluster, m.role.as_str(), "DnsChanges", 1.0, "Count");
        } else {
            info!(step = "dns-remove", outcome = "already-absent");
        }
        self.start_hold(&held.alive).await;
        Ok(())
    }
}

impl<F, R, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Deletes the instance's record as this function writes it; when that is not there (a
    /// redelivery, or a record written with other values) the name is read and whatever it
    /// holds for the instance is deleted. Ok(false): nothing was there.
    pub(super) async fn remove_record(
        &self,
        name: &str,
        intent: &Intent,
        expected: ManagerRecord,
        end: Instant,
    ) -> PortResult<bool> {
        let zone = &self.cfg.hosted_zone_id;
        let (id, ip) = (intent.instance_id(), expected.ip);
        if self.change_and_wait(name, RecordChange::Delete(expected), end).await? {
            return Ok(true);
        }
        let found: Vec<ManagerRecord> = self
            .dns
            .manager_records(zone, name)
            .await?
            .into_iter()
            .filter(|r| r.set_identifier == id || r.ip == ip)
            .collect();
        let mut removed = false;
        for r in found {
            removed |= self.change_and_wait(name, RecordChange::Delete(r), end).await?;
        }
        Ok(removed)
    }

    /// Submits one change and waits for INSYNC; Ok(false) when a DELETE found nothing. (A held
    /// action is kept alive around it: `while_alive`.)
    pub(super) async fn change_and_wait(
        &self,
        name: &str,
        change: RecordChange,
        end: Instant,
    ) -> Result<bool, PortError> {
        let zone = &self.cfg.hosted_zone_id;
        let change_id = self.dns.change(zone, name, vec![change.clone()]).await?;
        if change_id == crate::ports::UNCHANGED {
            return Ok(false);
        }
        self.wait_insync(&change_id, end).await?;
        Ok(true)
    }

    /// The leaving instance's values in this cluster's service names (none without
    /// SERVICE_RECORD_SUFFIX): one listing of the names under the suffix. Names never hold a
    /// retirement back: a listing that fails is logged and counted, and the node leaves (the
    /// reconcile takes its values out of the names then).
    pub(super) async fn leaving_service_records(&self, m: &Member, id: &str) -> Vec<ZoneEntry> {
        let Some(suffix) = &self.cfg.service_record_suffix else {
            return vec![];
        };
        let zone = match self.dns.records_under(&self.cfg.hosted_zone_id, suffix).await {
            Ok(z) => z,
            Err(e) => {
                error!(step = "service-names-remove", outcome = "failed", error = %e, "the node leaves all the same");
                metric(&m.cluster, m.role.as_str(), "Failures", 1.0, "Count");
                return vec![];
            }
        };
        crate::plan::service_dns::leaving_records(&zone, &m.cluster, id)
    }

    /// Deletes `records` (within Route 53's request limits) and waits for each batch's INSYNC.
    pub(super) async fn remove_service_records(&self, records: Vec<ZoneEntry>, end: Instant) -> PortResult<()> {
        let deletes = records.into_iter().map(ZoneChange::Delete).collect();
        for batch in crate::plan::service_dns::batches(deletes) {
            let change_id = self.dns.change_entries(&self.cfg.hosted_zone_id, &batch).await?;
            self.wait_insync(&change_id, end).await?;
        }
        Ok(())
    }

    /// Waits for a change's INSYNC.
    async fn wait_insync(&self, change_id: &str, end: Instant) -> Result<(), PortError> {
        // Route 53 takes a second or more to propagate: asking sooner only spends calls.
        let mut backoff = Backoff {
            next: Duration::from_secs(1),
            max: self.cfg.poll_max.max(Duration::from_secs(1)),
        };
        let first = clamp(Instant::now() + Duration::from_secs(1), Some(end));
        tokio::time::sleep_until(first).await;
        let wait_end = clamp(Instant::now() + Duration::from_secs(300), Some(end));
        loop {
            match self.dns.is_insync(change_id).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => warn!(step = "dns-wait", outcome = "retry", error = %e),
            }
            if Instant::now() >= wait_end {
                return Err(PortError::aws(
                    "GetChange",
                    format!("change {change_id} not INSYNC in time"),
                ));
            }
            backoff.wait(wait_end).await;
        }
    }
}
