//! Terminations throttled behind this one: kept alive, then retired here (workflow/queued.rs).

use super::*;

#[tokio::test(start_paused = true)]
async fn terminations_waiting_behind_this_one_are_kept_alive_then_retired_here() {
    let (w, l, timeout, w2) = two_workers_terminating(cfg()).await;
    let started = tokio::time::Instant::now();
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.instance_id.as_deref(), Some(W1), "the outcome is the event's own");
    let s = w.state();
    // W2's action is re-armed while W1's command runs, before a hook timeout has passed ...
    let first_w2 = s
        .heartbeats
        .iter()
        .zip(&s.heartbeat_times)
        .find(|(i, _)| *i == w2)
        .map(|(_, t)| *t);
    assert!(first_w2.is_some_and(|t| t - started < timeout), "{:?}", s.heartbeats);
    // ... and W2 is retired here after W1, its action completed.
    let done: Vec<&str> = s.completed.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(done, vec![W1, w2]);
    drop(s);
    assert!(w.node_of(w2).is_none(), "the waiting worker's node was removed");
}

#[tokio::test(start_paused = true)]
async fn no_more_terminations_than_the_function_runs_at_once_are_left_to_their_own_invocations() {
    let mut c = cfg();
    c.terminate_concurrency = Some(2);
    let (w, l, _, w2) = two_workers_terminating(c).await;
    l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    let s = w.state();
    // Two waiting, two at once: W2 has an invocation of its own; none of its work is done here.
    assert!(!s.heartbeats.iter().any(|i| i == w2), "{:?}", s.heartbeats);
    assert_eq!(
        s.completed.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
        vec![W1]
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_termination_another_retirement_has_fenced_is_left_to_it() {
    let (w, l, _, w2) = two_workers_terminating(cfg()).await;
    // Another invocation is retiring W2: its probe fenced the instance.
    w.state().retired.insert(w2.to_string());
    l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    let done: Vec<String> = w.state().completed.iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(done, vec![W1.to_string()]);
    assert!(
        w.node_of(w2).is_some(),
        "the fenced worker is left to its own retirement"
    );
}
