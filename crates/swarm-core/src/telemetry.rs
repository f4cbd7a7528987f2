//! CloudWatch Embedded Metric Format: one JSON line on stdout per measurement.
//! CloudWatch turns these into metrics without any API call from the function; nothing else here.

use serde_json::json;

pub const NAMESPACE: &str = "SwarmLifecycle";

static EMF_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops the EMF lines: a Lambda's stdout goes to CloudWatch Logs, which turns them into
/// metrics; the operator's command's stdout is its answer.
pub fn disable_emf() {
    EMF_OFF.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn emf_enabled() -> bool {
    !EMF_OFF.load(std::sync::atomic::Ordering::Relaxed)
}

/// Emits `name` = `value` (`unit`: Count, Milliseconds, …) by cluster and role.
pub fn metric(cluster: &str, role: &str, name: &str, value: f64, unit: &str) {
    if emf_enabled() {
        println!("{}", emf_line(cluster, role, name, value, unit, now_ms()));
    }
}

pub fn emf_line(cluster: &str, role: &str, name: &str, value: f64, unit: &str, ts_ms: u128) -> String {
    json!({
        "_aws": {
            "Timestamp": ts_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Cluster", "Role"]],
                "Metrics": [{"Name": name, "Unit": unit}]
            }]
        },
        "Cluster": cluster,
        "Role": role,
        name: value
    })
    .to_string()
}

/// Emits several metrics of the whole cluster (dimension Cluster only) in one line.
pub fn cluster_metrics(cluster: &str, metrics: &[(&str, f64, &str)]) {
    if emf_enabled() {
        println!("{}", cluster_emf_line(cluster, metrics, now_ms()));
    }
}

pub fn cluster_emf_line(cluster: &str, metrics: &[(&str, f64, &str)], ts_ms: u128) -> String {
    let mut line = json!({
        "_aws": {
            "Timestamp": ts_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Cluster"]],
                "Metrics": metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>()
            }]
        },
        "Cluster": cluster,
    });
    for (name, value, _) in metrics {
        line[*name] = json!(value);
    }
    line.to_string()
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn emf_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&super::emf_line("c", "manager", "Joins", 1.0, "Count", 5)).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "Joins");
        assert_eq!(v["Joins"], 1.0);
        assert_eq!(v["Cluster"], "c");
    }

    #[test]
    fn cluster_emf_carries_every_metric_by_cluster_only() {
        let line = super::cluster_emf_line("c", &[("DownNodes", 1.0, "Count"), ("QuorumMargin", -1.0, "Count")], 5);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let decl = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Dimensions"], serde_json::json!([["Cluster"]]));
        assert_eq!(decl["Metrics"][1]["Name"], "QuorumMargin");
        assert_eq!(
            (v["DownNodes"].as_f64(), v["QuorumMargin"].as_f64()),
            (Some(1.0), Some(-1.0))
        );
    }
}
