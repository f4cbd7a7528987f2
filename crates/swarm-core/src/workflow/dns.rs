//! The manager record: one change submitted and waited for until INSYNC, and a DELETE that
//! finds what is there. Route 53 only.

use super::*;

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce> Lifecycle<F, R, D, P, A> {
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
    /// action is kept alive around it: `while_held`.)
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
        // Route 53 takes a second or more to propagate: asking sooner only spends calls.
        let mut backoff = Backoff {
            next: Duration::from_secs(1),
            max: self.cfg.poll_max.max(Duration::from_secs(1)),
        };
        let first = clamp(Instant::now() + Duration::from_secs(1), Some(end));
        tokio::time::sleep_until(first).await;
        let wait_end = clamp(Instant::now() + Duration::from_secs(300), Some(end));
        loop {
            match self.dns.is_insync(&change_id).await {
                Ok(true) => return Ok(true),
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
