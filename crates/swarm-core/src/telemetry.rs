//! CloudWatch Embedded Metric Format: one JSON line on stdout per measurement.
//! CloudWatch turns these into metrics without any API call from the function; nothing else here.

use serde_json::json;

pub const NAMESPACE: &str = "SwarmLifecycle";

/// Emits `name` = `value` (`unit`: Count, Milliseconds, …) by cluster and role.
pub fn metric(cluster: &str, role: &str, name: &str, value: f64, unit: &str) {
    println!("{}", emf_line(cluster, role, name, value, unit, now_ms()));
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
}
