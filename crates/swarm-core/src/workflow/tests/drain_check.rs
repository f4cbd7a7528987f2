//! Drains handed over to the drain-check function (workflow/drain_check.rs): no invocation
//! waits for the drain; each check re-arms the action and reads the last command.

use super::*;
use crate::plan::drain_check::DrainCheck;

fn with_queue() -> Config {
    let mut c = cfg();
    c.drain_check_queue = Some("https://sqs.local/checks".into());
    c
}

/// Three managers and a worker whose drain outlasts `slow` drain commands, terminated with a
/// queue: the hook's outcome.
async fn hand_over(slow: u32) -> (World, L, Outcome) {
    let w = cluster();
    let l = lifecycle(&w, with_queue());
    three_managers_and_a_worker(&l, &w).await;
    w.state().slow_drains = slow;
    w.state().commands.clear();
    w.state().announced.clear();
    w.state().completed.clear();
    w.set_lifecycle(W1, "Terminating:Wait");
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    (w, l, o)
}

/// Delivers the checks left on the queue until one ends the drain; its outcome and how many ran.
async fn run_checks(w: &World, l: &L) -> (Outcome, usize) {
    let mut n = 0;
    loop {
        let next = w.state().checks.pop();
        let Some((body, delay)) = next else {
            panic!("no check left after {n}");
        };
        assert!(
            delay >= Duration::from_secs(1) && delay <= Duration::from_secs(900),
            "{delay:?}"
        );
        tokio::time::sleep(delay).await;
        n += 1;
        let o = l.handle_drain_check(&body, None).await.unwrap();
        if o.outcome != OutcomeKind::Draining {
            return (o, n);
        }
        assert_eq!(w.state().checks.len(), 1, "each check leaves exactly one");
    }
}

#[tokio::test(start_paused = true)]
async fn a_drain_slower_than_its_first_command_is_handed_over_and_finished_by_its_checks() {
    let (w, l, o) = hand_over(3).await;
    assert_eq!(o.outcome, OutcomeKind::Draining, "{o:?}");
    assert!(
        w.state().completed.iter().all(|(i, _)| i != W1),
        "not completed by the hook"
    );
    assert!(w.node_of(W1).is_some(), "the node stays while it drains");
    let (o, checks) = run_checks(&w, &l).await;
    assert_eq!(
        (o.outcome, o.result),
        (OutcomeKind::Completed, Some(ActionResult::Continue)),
        "{o:?}"
    );
    // The slice's command, then one drain command per check until one answered drained.
    assert_eq!(checks, 3);
    assert!(w.node_of(W1).is_none(), "the node was removed");
    let s = w.state();
    assert_eq!(s.completed.iter().filter(|(i, _)| i == W1).count(), 1);
    // Re-armed when handed over and by every check: the action never waited a period unarmed.
    assert!(
        s.heartbeats.iter().filter(|i| *i == W1).count() > checks,
        "{:?}",
        s.heartbeats
    );
    let told: Vec<_> = s.announced.iter().map(|(_, e)| e.detail_type()).collect();
    assert_eq!(told, vec!["Swarm Node Retired"], "told once, when it ended");
}

#[tokio::test(start_paused = true)]
async fn without_a_queue_the_drain_goes_on_inside_the_invocation() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.state().slow_drains = 3;
    w.set_lifecycle(W1, "Terminating:Wait");
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Completed, "{o:?}");
    assert!(w.state().checks.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_drain_done_within_its_first_command_is_never_handed_over() {
    let (w, _, o) = hand_over(0).await;
    assert_eq!(o.outcome, OutcomeKind::Completed, "{o:?}");
    assert!(w.state().checks.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_check_past_the_drain_s_deadline_tells_the_timeout_and_retires_the_node() {
    let (w, l, _) = hand_over(1000).await;
    let (body, _) = w.state().checks.pop().expect("a check");
    let mut check: DrainCheck = serde_json::from_str(&body).unwrap();
    check.deadline_unix = unix_now() - 1;
    let o = l
        .handle_drain_check(&serde_json::to_string(&check).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(o.outcome, OutcomeKind::Completed, "{o:?}");
    assert!(w.node_of(W1).is_none());
    let told: Vec<_> = w.state().announced.iter().map(|(_, e)| e.detail_type()).collect();
    assert_eq!(told, vec!["Swarm Drain Timed Out", "Swarm Node Retired"]);
    assert!(w.state().checks.is_empty(), "no check after the last");
}

#[tokio::test(start_paused = true)]
async fn a_check_after_the_action_ended_changes_nothing() {
    let (w, l, _) = hand_over(1000).await;
    let (body, _) = w.state().checks.pop().expect("a check");
    // The hook's timeout ran out (a lost check): the instance is going; the reconcile removes
    // its node once it is gone.
    w.set_lifecycle(W1, "Terminating:Proceed");
    w.state().commands.clear();
    let o = l.handle_drain_check(&body, None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::AlreadyEnded, "{o:?}");
    assert!(w.state().commands.is_empty() && w.state().checks.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_check_whose_manager_cannot_operate_drains_on_through_another() {
    let (w, l, _) = hand_over(2).await;
    let (body, _) = w.state().checks.pop().expect("a check");
    let check: DrainCheck = serde_json::from_str(&body).unwrap();
    w.state().sent.get_mut(&check.command_id).unwrap().status = CommandStatus::Undeliverable;
    let o = l.handle_drain_check(&body, None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Draining, "{o:?}");
    let (body, _) = w.state().checks.last().cloned().expect("a check");
    let next: DrainCheck = serde_json::from_str(&body).unwrap();
    assert_ne!(next.operator, check.operator, "another manager drains");
    let (o, _) = run_checks(&w, &l).await;
    assert_eq!(o.outcome, OutcomeKind::Completed, "{o:?}");
}

#[tokio::test(start_paused = true)]
async fn a_message_that_is_not_a_check_is_rejected_and_not_retried() {
    let w = cluster();
    let l = lifecycle(&w, with_queue());
    let o = l.handle_drain_check("{\"hello\": 1}", None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Invalid);
}

/// e2e, first run: the check's deadline was the handing invocation's (drain_end is clamped to
/// it), so the first check found the drain timed out 10 s into a 150 s DrainTimeout.
#[tokio::test(start_paused = true)]
async fn a_handed_over_drain_keeps_its_drain_timeout_beyond_the_invocation_s_deadline() {
    let w = cluster();
    let l = lifecycle(&w, with_queue());
    three_managers_and_a_worker(&l, &w).await;
    w.state().slow_drains = 1000;
    w.set_lifecycle(W1, "Terminating:Wait");
    let short = tokio::time::Instant::now() + Duration::from_secs(15);
    let o = l.handle(&event("terminate", "wrk", W1), Some(short)).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Draining, "{o:?}");
    let (body, _) = w.state().checks.pop().expect("a check");
    let check: DrainCheck = serde_json::from_str(&body).unwrap();
    let span = check.deadline_unix - check.began_unix;
    assert!(
        span + 1 >= l.cfg.drain_timeout.as_secs(),
        "{span} s of {:?}",
        l.cfg.drain_timeout
    );
}

/// The load scenario, first run with the queue: under load the hand-over's command and message
/// took 4 s and the action, due for its re-arm, was released by the hook's timeout meanwhile.
#[tokio::test(start_paused = true)]
async fn the_action_is_kept_alive_while_the_drain_is_handed_over() {
    let w = cluster();
    let l = lifecycle(&w, with_queue());
    three_managers_and_a_worker(&l, &w).await;
    w.state().slow_drains = 1000;
    let timeout = l.cfg.terminate_heartbeat_timeout;
    // Sending the drain command takes three heartbeat timeouts (a stuck connection, a busy host).
    w.state().command_time.insert("drain", timeout * 3);
    w.set_lifecycle(W1, "Terminating:Wait");
    w.state().heartbeat_times.clear();
    let start = tokio::time::Instant::now();
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Draining, "{o:?}");
    let mut beats = vec![start];
    beats.extend(w.state().heartbeat_times.iter().copied());
    let gaps: Vec<Duration> = beats.windows(2).map(|p| p[1] - p[0]).collect();
    assert!(gaps.iter().all(|g| *g < timeout), "{gaps:?} against {timeout:?}");
}
