//! The well-known labels of a node (plan/labels.rs sets them): the node list prints them.

pub const INSTANCE_ID: &str = "swarm.instance-id";
pub const ZONE: &str = "swarm.zone";
pub const INSTANCE_TYPE: &str = "swarm.instance-type";
pub const CAPACITY_TYPE: &str = "swarm.capacity-type";
pub const GROUP: &str = "swarm.group";
/// The group tag that gives its nodes labels of their own: `key=value,key=value`.
pub const GROUP_LABELS_TAG: &str = "swarm:node-labels";
/// The node list prints this much of a node's group label (its lines must stay short: SSM
/// keeps 24,000 characters of output); a longer group name is compared on this prefix.
pub const LISTED_GROUP_CHARS: usize = 64;
/// The well-known labels the node list prints and the reconcile repairs, in its order.
pub const LISTED: [&str; 4] = [ZONE, INSTANCE_TYPE, CAPACITY_TYPE, GROUP];
