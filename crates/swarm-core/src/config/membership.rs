//! How a group takes part in a cluster, read from its tags as the deployment names them.

use crate::model::{Group, Role};
use crate::Config;

/// How a group takes part in a cluster, from its tags.
#[derive(Debug, Clone, PartialEq)]
pub enum Membership {
    /// No cluster tag: not ours.
    Unmanaged,
    /// Tags present but unusable (bad role, unsafe name): logged, nothing done.
    Misconfigured(String),
    Member {
        cluster: String,
        role: Role,
        dns_name: Option<String>,
    },
}

pub fn invalid_cluster_tag(group: &Group, cfg: &Config) -> String {
    format!(
        "tag {} of group {} is not a valid cluster name (letters, digits, - _ .; at most 64)",
        cfg.cluster_tag, group.name
    )
}

pub fn membership(group: &Group, cfg: &Config) -> Membership {
    let Some(cluster) = group.tag(&cfg.cluster_tag) else {
        return Membership::Unmanaged;
    };
    if !crate::safe::is_cluster_name(cluster) {
        return Membership::Misconfigured(invalid_cluster_tag(group, cfg));
    }
    let Some(role) = group.tag(&cfg.role_tag).and_then(Role::parse) else {
        return Membership::Misconfigured(format!(
            "tag {} of group {} must be manager or worker",
            cfg.role_tag, group.name
        ));
    };
    let dns_name = match group.tag(&cfg.dns_tag) {
        None | Some("") => None,
        Some(n) if crate::safe::is_dns_name(n) => Some(n.trim_end_matches('.').to_ascii_lowercase()),
        Some(_) => {
            return Membership::Misconfigured(format!(
                "tag {} of group {} is not a valid DNS name",
                cfg.dns_tag, group.name
            ))
        }
    };
    Membership::Member {
        cluster: cluster.to_string(),
        role,
        dns_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_from_tags() {
        let cfg = Config::for_tests();
        let g = |tags: &[(&str, &str)]| Group {
            name: "g".into(),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            instances: vec![],
        };
        assert_eq!(membership(&g(&[]), &cfg), Membership::Unmanaged);
        assert!(matches!(
            membership(&g(&[("swarm:cluster", "c"), ("swarm:role", "boss")]), &cfg),
            Membership::Misconfigured(_)
        ));
        assert!(matches!(
            membership(&g(&[("swarm:cluster", "c$(reboot)"), ("swarm:role", "worker")]), &cfg),
            Membership::Misconfigured(_)
        ));
        assert_eq!(
            membership(
                &g(&[
                    ("swarm:cluster", "c"),
                    ("swarm:role", "Manager"),
                    ("swarm:dns-name", "M.swarm.internal.")
                ]),
                &cfg
            ),
            Membership::Member {
                cluster: "c".into(),
                role: Role::Manager,
                dns_name: Some("m.swarm.internal".into())
            }
        );
    }
}
