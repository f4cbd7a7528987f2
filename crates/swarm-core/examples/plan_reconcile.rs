//! Times the reconcile planner on synthetic clusters (1% down nodes, 1% strays, DNS drift).
//! `cargo run --release -p swarm-core --example plan_reconcile [sizes…]` prints JSON lines.

use std::time::Instant;

use swarm_core::plan::reconcile::{plan_reconcile, synthetic};

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000] } else { sizes };
    for n in sizes {
        let snap = synthetic(n);
        let mut times = Vec::new();
        let mut repairs = 0;
        for _ in 0..11 {
            let t = Instant::now();
            repairs = plan_reconcile(&snap, 60).len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{{\"nodes\": {n}, \"repairs\": {repairs}, \"median_ms\": {:.3}, \"max_ms\": {:.3}}}",
            times[5], times[10]
        );
    }
}
