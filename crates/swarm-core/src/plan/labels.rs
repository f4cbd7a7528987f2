//! The labels a node carries for placing services: well-known ones from its instance and
//! group (`swarm.zone`, `swarm.instance-type`, `swarm.capacity-type`, `swarm.group`,
//! `swarm.instance-id`) and a group's own, from its `swarm:node-labels` tag. Pure.

use std::collections::BTreeMap;

use crate::model::{Group, Instance};

pub use crate::model::label_keys::*;

/// Docker's own namespaces ("reserved for internal use by Docker") and this project's.
const RESERVED: [&str; 4] = ["swarm.", "com.docker.", "io.docker.", "org.dockerproject."];

pub type Labels = Vec<(String, String)>;

/// The labels of `instance` in `group`: the well-known ones, then the group's own. Err names
/// the malformed group label: the launch is abandoned with it rather than joined half-labelled.
pub fn node_labels(instance: &Instance, group: &Group) -> Result<Labels, String> {
    let mut out = well_known(instance, &group.name);
    out.extend(group_labels(group.tag(GROUP_LABELS_TAG))?);
    Ok(out)
}

/// The instance id always; zone, instance type and capacity type when EC2 told them; the
/// group when its name can travel as a label value (no control characters).
pub fn well_known(i: &Instance, group: &str) -> Labels {
    let mut out = vec![(INSTANCE_ID.to_string(), i.id.clone())];
    if let Some(z) = i.zone.as_deref().filter(|z| plain(z)) {
        out.push((ZONE.into(), z.into()));
    }
    if let Some(t) = i.instance_type.as_deref().filter(|t| plain(t)) {
        out.push((INSTANCE_TYPE.into(), t.into()));
    }
    let capacity = if i.spot { "spot" } else { "on-demand" };
    out.push((CAPACITY_TYPE.into(), capacity.into()));
    if plain(group) {
        out.push((GROUP.into(), group.into()));
    }
    out
}

fn plain(v: &str) -> bool {
    !v.is_empty() && !v.chars().any(char::is_control)
}

/// A group's own labels from its tag (none when untagged). Keys: lowercase letters, digits,
/// dots, hyphens and underscores, starting and ending with a letter or digit (Docker's
/// recommendation for label keys), at most 128 characters, outside the reserved namespaces;
/// values: no control characters or commas, at most 256 characters (a tag's own limit).
pub fn group_labels(tag: Option<&str>) -> Result<Labels, String> {
    let Some(tag) = tag else { return Ok(vec![]) };
    let mut out: Labels = Vec::new();
    for entry in tag.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: &str| format!("label {entry:?} of tag {GROUP_LABELS_TAG}: {why}");
        let (k, v) = entry.split_once('=').ok_or_else(|| bad("not key=value"))?;
        let (k, v) = (k.trim(), v.trim());
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if k.len() > 128
            || !edge(k.chars().next())
            || !edge(k.chars().last())
            || !k
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
        {
            return Err(bad("a key is lowercase letters, digits, '.', '-' and '_', at most 128"));
        }
        if let Some(p) = RESERVED.iter().find(|p| k.starts_with(*p)) {
            return Err(bad(&format!("the {p} namespace is reserved")));
        }
        if v.len() > 256 || v.chars().any(char::is_control) {
            return Err(bad(
                "a value is at most 256 characters, none of them control characters",
            ));
        }
        if out.iter().any(|(seen, _)| seen == k) {
            return Err(bad("the key is given twice"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// How the labels travel to the scripts (`NODE_LABELS`): `key=value` entries separated by
/// tabs, which no label here contains.
pub fn encode(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\t")
}

/// The well-known labels a node lacks or has wrong, against what its instance should carry
/// (`listed`: what the node list printed of them). A group's own labels are set at the join
/// and with every repair, not compared (the node list stays short).
pub fn drift(listed: &BTreeMap<String, String>, expected: &Labels) -> Vec<String> {
    expected
        .iter()
        .filter(|(k, _)| LISTED.contains(&k.as_str()))
        .filter(|(k, v)| {
            let want: &str = if k == GROUP { prefix(v, LISTED_GROUP_CHARS) } else { v };
            listed.get(k.as_str()).map(String::as_str) != Some(want)
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The first `n` bytes of `s` (Docker's `truncate` cuts bytes), on a character boundary.
fn prefix(s: &str, n: usize) -> &str {
    let mut end = s.len().min(n);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::inst;

    fn group(tag: Option<&str>) -> Group {
        Group {
            name: "blue-workers-spot".into(),
            tags: tag
                .map(|t| (GROUP_LABELS_TAG.to_string(), t.to_string()))
                .into_iter()
                .collect(),
            instances: vec![],
        }
    }

    fn placed(spot: bool) -> Instance {
        let mut i = inst("i-0123456789abcdef0").unwrap();
        i.zone = Some("eu-west-1b".into());
        i.instance_type = Some("m7g.large".into());
        i.spot = spot;
        i
    }

    #[test]
    fn a_node_is_labelled_with_its_zone_type_capacity_group_and_id() {
        let labels = node_labels(&placed(true), &group(Some("tier=batch, gpu=false"))).unwrap();
        let got: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            got,
            [
                "swarm.instance-id=i-0123456789abcdef0",
                "swarm.zone=eu-west-1b",
                "swarm.instance-type=m7g.large",
                "swarm.capacity-type=spot",
                "swarm.group=blue-workers-spot",
                "tier=batch",
                "gpu=false"
            ]
        );
        let od = well_known(&placed(false), "g");
        assert!(od.contains(&(CAPACITY_TYPE.into(), "on-demand".into())));
        assert_eq!(encode(&od).split('\t').count(), od.len());
    }

    #[test]
    fn what_ec2_did_not_tell_is_left_out_and_an_odd_group_name_too() {
        let mut i = inst("i-0123456789abcdef0").unwrap();
        i.zone = None;
        i.instance_type = None;
        let keys: Vec<String> = well_known(&i, "a\tb").into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [INSTANCE_ID, CAPACITY_TYPE]);
    }

    #[test]
    fn malformed_group_labels_are_refused_with_the_label_named() {
        for (tag, why) in [
            ("tier", "not key=value"),
            ("Tier=a", "lowercase"),
            ("-x=a", "lowercase"),
            ("swarm.zone=a", "swarm. namespace is reserved"),
            ("com.docker.x=1", "com.docker. namespace"),
            ("a=1,a=2", "twice"),
        ] {
            let e = group_labels(Some(tag)).unwrap_err();
            assert!(e.contains(why) && e.contains(GROUP_LABELS_TAG), "{tag}: {e}");
        }
        let long = format!("k={}", "v".repeat(257));
        assert!(group_labels(Some(&long)).is_err());
        assert_eq!(group_labels(Some(" , ")).unwrap(), vec![]);
        assert_eq!(group_labels(None).unwrap(), vec![]);
        assert_eq!(
            group_labels(Some("a.b-c_d=x y")).unwrap(),
            vec![("a.b-c_d".into(), "x y".into())]
        );
    }

    #[test]
    fn drift_names_the_well_known_labels_missing_or_wrong() {
        let expected = well_known(&placed(false), &"g".repeat(80));
        let mut listed: BTreeMap<String, String> = [
            (ZONE, "eu-west-1b"),
            (INSTANCE_TYPE, "m7g.large"),
            (CAPACITY_TYPE, "on-demand"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // The group is listed cut to 64 characters: equal on that prefix.
        listed.insert(GROUP.into(), "g".repeat(64));
        assert_eq!(drift(&listed, &expected), Vec::<String>::new());
        listed.remove(ZONE);
        listed.insert(CAPACITY_TYPE.into(), "spot".into());
        assert_eq!(
            drift(&listed, &expected),
            vec![ZONE.to_string(), CAPACITY_TYPE.to_string()]
        );
        assert_eq!(prefix("ééé", 3), "é");
    }
}
