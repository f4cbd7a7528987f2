//! Route 53 behind the `Dns` port: the manager record's per-instance answers.
//! One API per method and its error mapping; no decisions.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use swarm_core::model::ManagerRecord;
use swarm_core::plan::service_dns::{ZoneChange, ZoneEntry};
use swarm_core::ports::{Dns, PortError, PortResult, RecordChange};

use crate::{aws_error, code_of, OnFirstUse, SdkConfig};

/// Manager records are multivalue-answer A records, one per instance (SetIdentifier =
/// instance id): a launch and a termination never rewrite each other's record set, so
/// concurrent changes cannot lose one another.
pub struct AwsDns {
    client: OnFirstUse<aws_sdk_route53::Client>,
}

use swarm_core::ports::UNCHANGED as NOTHING_CHANGED;

impl AwsDns {
    pub fn new(client: aws_sdk_route53::Client) -> Self {
        AwsDns {
            client: OnFirstUse::Ready(client),
        }
    }

    /// The client built when first called.
    pub fn on_first_use(conf: &SdkConfig) -> Self {
        AwsDns {
            client: OnFirstUse::lazy(conf, aws_sdk_route53::Client::new),
        }
    }
}

/// A name as Route 53 sorts its listing: "by DNS name with the labels reversed, for example:
/// com.example.www.", the trailing dot included (it orders `-` and the like before `.`), so
/// the names under a suffix are the ones that start with its key.
fn listing_key(name: &str) -> String {
    let mut k: String = name.trim_end_matches('.').rsplit('.').collect::<Vec<_>>().join(".");
    k.push('.');
    k.to_ascii_lowercase()
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// A manager record's answer as an entry of the zone (one per instance, multivalue).
fn manager_entry(name: &str, r: &ManagerRecord) -> ZoneEntry {
    ZoneEntry {
        name: name.to_string(),
        kind: "A".into(),
        set_identifier: Some(r.set_identifier.clone()),
        values: vec![r.ip.to_string()],
        ttl: r.ttl,
    }
}

impl Dns for AwsDns {
    async fn manager_records(&self, zone: &str, name: &str) -> PortResult<Vec<ManagerRecord>> {
        let want = fqdn(name).to_ascii_lowercase();
        let mut out = Vec::new();
        self.list_from(zone, want.clone(), Some(RrType::A), |rs| {
            if rs.name().to_ascii_lowercase() != want {
                return false;
            }
            if rs.r#type() == &RrType::A {
                for rr in rs.resource_records() {
                    if let Ok(ip) = rr.value().parse() {
                        out.push(ManagerRecord {
                            set_identifier: rs.set_identifier().unwrap_or_default().to_string(),
                            ip,
                            ttl: rs.ttl().unwrap_or_default().max(0) as u64,
                        });
                    }
                }
            }
            true
        })
        .await?;
        Ok(out)
    }

    async fn change(&self, zone: &str, name: &str, changes: Vec<RecordChange>) -> PortResult<String> {
        match self.send_changes(zone, name, &changes).await {
            // Someone changed the record since it was read (its TTL, say): Route 53 deletes only
            // an exact match, so read it again and delete what is there now.
            Err(e) if is_stale_delete(&changes, &e) => {
                let current = self.manager_records(zone, name).await?;
                let fresh: Vec<RecordChange> = changes
                    .iter()
                    .filter_map(|c| {
                        let RecordChange::Delete(r) = c else { return None };
                        current
                            .iter()
                            .find(|x| x.set_identifier == r.set_identifier)
                            .map(|x| RecordChange::Delete(x.clone()))
                    })
                    .collect();
                if fresh.is_empty() {
                    return Ok(NOTHING_CHANGED.to_string());
                }
                self.send_changes(zone, name, &fresh).await
            }
            other => other,
        }
    }

    async fn records_under(&self, zone: &str, suffix: &str) -> PortResult<Vec<ZoneEntry>> {
        let top = listing_key(suffix);
        let mut out = Vec::new();
        // Route 53 lists by the reversed name, so the names under the suffix come together
        // from it on, and the listing stops once it has passed them.
        self.list_from(zone, fqdn(suffix), None, |rs| {
            let key = listing_key(rs.name());
            if !key.starts_with(&top) {
                return key < top;
            }
            out.push(ZoneEntry {
                name: rs.name().trim_end_matches('.').to_ascii_lowercase(),
                kind: rs.r#type().as_str().to_string(),
                set_identifier: rs.set_identifier().map(str::to_string),
                values: rs.resource_records().iter().map(|r| r.value().to_string()).collect(),
                ttl: rs.ttl().unwrap_or_default().max(0) as u64,
            });
            true
        })
        .await?;
        Ok(out)
    }

    async fn change_entries(&self, zone: &str, changes: &[ZoneChange]) -> PortResult<String> {
        self.send(zone, "swarm-lifecycle service names", changes).await
    }

    async fn is_insync(&self, change_id: &str) -> PortResult<bool> {
        if change_id == NOTHING_CHANGED {
            return Ok(true);
        }
        let resp = self
            .client
            .get()
            .get_change()
            .id(change_id.trim_start_matches("/change/"))
            .send()
            .await
            .map_err(|e| aws_error("GetChange", &e))?;
        Ok(resp.change_info().map(|c| c.status()) == Some(&ChangeStatus::Insync))
    }
}

impl AwsDns {
    /// Lists the zone from `name` (and `kind`) on, a page at a time, handing each record set to
    /// `take` until it answers false (past what the caller wants) or the listing ends. By hand:
    /// the SDK has no paginator for ListResourceRecordSets (its position is three fields).
    async fn list_from(
        &self,
        zone: &str,
        name: String,
        kind: Option<RrType>,
        mut take: impl FnMut(&ResourceRecordSet) -> bool,
    ) -> PortResult<()> {
        let (mut start_name, mut start_type, mut start_id) = (Some(name), kind, None::<String>);
        loop {
            let resp = self
                .client
                .get()
                .list_resource_record_sets()
                .hosted_zone_id(zone)
                .set_start_record_name(start_name.clone())
                .set_start_record_type(start_type.clone())
                .set_start_record_identifier(start_id.clone())
                .send()
                .await
                .map_err(|e| aws_error("ListResourceRecordSets", &e))?;
            for rs in resp.resource_record_sets() {
                if !take(rs) {
                    return Ok(());
                }
            }
            if !resp.is_truncated() {
                return Ok(());
            }
            start_name = resp.next_record_name().map(str::to_string);
            start_type = resp.next_record_type().cloned();
            start_id = resp.next_record_identifier().map(str::to_string);
        }
    }
}

/// A batch of deletes that Route 53 refused because the values no longer match.
fn is_stale_delete(changes: &[RecordChange], e: &PortError) -> bool {
    changes.iter().all(|c| matches!(c, RecordChange::Delete(_)))
        && matches!(e, PortError::Aws { message, .. } if message.contains(STALE))
}

impl AwsDns {
    async fn send_changes(&self, zone: &str, name: &str, changes: &[RecordChange]) -> PortResult<String> {
        let changes: Vec<ZoneChange> = changes
            .iter()
            .map(|c| match c {
                RecordChange::Upsert(r) => ZoneChange::Upsert(manager_entry(name, r)),
                RecordChange::Delete(r) => ZoneChange::Delete(manager_entry(name, r)),
            })
            .collect();
        self.send(zone, "swarm-lifecycle", &changes).await
    }

    /// One ChangeResourceRecordSets request; its change id. A batch of deletes whose records
    /// are gone already (a concurrent delivery deleted them) has nothing to do.
    async fn send(&self, zone: &str, comment: &str, changes: &[ZoneChange]) -> PortResult<String> {
        let op = "ChangeResourceRecordSets";
        let only_deletes = changes.iter().all(|c| matches!(c, ZoneChange::Delete(_)));
        let mut batch = ChangeBatch::builder().comment(comment);
        for c in changes {
            let (action, e) = match c {
                ZoneChange::Upsert(e) => (ChangeAction::Upsert, e),
                ZoneChange::Delete(e) => (ChangeAction::Delete, e),
            };
            let mut set = ResourceRecordSet::builder()
                .name(fqdn(&e.name))
                .r#type(RrType::from(e.kind.as_str()))
                .ttl(e.ttl as i64)
                .set_set_identifier(e.set_identifier.clone());
            if e.set_identifier.is_some() {
                set = set.multi_value_answer(true);
            }
            for v in &e.values {
                let rr = ResourceRecord::builder().value(v).build();
                set = set.resource_records(rr.map_err(|e| PortError::aws(op, e))?);
            }
            let set = set.build().map_err(|e| PortError::aws(op, e))?;
            let change = Change::builder().action(action).resource_record_set(set).build();
            batch = batch.changes(change.map_err(|e| PortError::aws(op, e))?);
        }
        let batch = batch.build().map_err(|e| PortError::aws(op, e))?;
        match self
            .client
            .get()
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send()
            .await
        {
            Ok(resp) => Ok(resp.change_info().map(|c| c.id().to_string()).unwrap_or_default()),
            Err(e)
                if only_deletes
                    && (e.as_service_error().is_some_and(|s| s.is_invalid_change_batch())
                        || code_of(&e) == Some("InvalidChangeBatch"))
                    && format!("{e:?}").contains("not found") =>
            {
                Ok(NOTHING_CHANGED.to_string())
            }
            // The modelled error carries its text in `messages`: keep the part that matters.
            Err(e) if only_deletes && format!("{e:?}").contains(STALE) => {
                Err(PortError::aws(op, format!("InvalidChangeBatch: {STALE}")))
            }
            Err(e) => Err(aws_error(op, &e)),
        }
    }
}

/// Route 53's words for a DELETE whose values are not the record's current ones.
const STALE: &str = "do not match the current values";
