//! Pure planners: from a snapshot of the world to the next thing to do, a file per verb. No
//! I/O here; every branch is unit-tested in its file.

pub mod doctor;
pub mod drain_check;
mod join;
pub mod labels;
mod notice;
pub mod preview;
pub mod reconcile;
pub mod repair;
mod retire;
pub mod service_dns;
mod service_zone;
pub mod status;

pub use join::*;
pub use notice::*;
pub use retire::*;

/// A running instance at 10.0.1.10, for the planners' tests.
#[cfg(test)]
fn inst(id: &str) -> Option<crate::model::Instance> {
    Some(crate::model::Instance {
        id: id.into(),
        state: crate::model::InstanceState::Running,
        private_ip: Some("10.0.1.10".parse().unwrap()),
        launched_unix: Some(0),
        zone: Some("us-east-1a".into()),
        instance_type: Some("t3.small".into()),
        spot: false,
    })
}
