//! Workflow tests over the in-memory world (tokio's paused clock: backoff costs nothing), a
//! file per room; the shared set-up is here.

use super::*;
use crate::memory::{SimNode, World};
use crate::model::InstanceState;
use serde_json::json;

type L = Lifecycle<World, World, World, World, World, World>;

fn cfg() -> Config {
    let mut c = Config::for_tests();
    c.agent_wait = Duration::from_secs(20);
    c.join_budget = Duration::from_secs(60);
    c
}

fn lifecycle(world: &World, cfg: Config) -> L {
    Lifecycle {
        fleet: world.clone(),
        remote: world.clone(),
        dns: world.clone(),
        params: world.clone(),
        events: world.clone(),
        checks: world.clone(),
        cfg,
    }
}

fn event(kind: &str, group: &str, id: &str) -> Value {
    event_aged(kind, group, id, 0)
}

/// An event whose lifecycle action began `age` seconds ago (it waited in Lambda's queue).
fn event_aged(kind: &str, group: &str, id: &str, age: u64) -> Value {
    let time = chrono::DateTime::from_timestamp((unix_now() - age) as i64, 0)
        .expect("time")
        .to_rfc3339();
    let (dt, tr) = if kind == "launch" {
        (event::LAUNCH_DETAIL_TYPE, event::LAUNCHING)
    } else {
        (event::TERMINATE_DETAIL_TYPE, event::TERMINATING)
    };
    json!({
        "version": "0", "id": format!("ev-{kind}-{id}"), "detail-type": dt, "source": "aws.autoscaling",
        "account": "123456789012", "time": time, "region": "us-east-1", "resources": [],
        "detail": {
            "LifecycleActionToken": format!("tok-{id}"), "AutoScalingGroupName": group,
            "LifecycleHookName": kind, "EC2InstanceId": id, "LifecycleTransition": tr
        }
    })
}

fn cluster() -> World {
    let w = World::default();
    w.add_group("mgr", "blue", Role::Manager, Some("managers.blue.internal"));
    w.add_group("wrk", "blue", Role::Worker, None);
    w
}

/// Launches and handles an instance; returns the outcome.
async fn launch(l: &L, w: &World, group: &str, id: &str, ip: &str) -> Outcome {
    w.launch(group, id, ip);
    l.handle(&event("launch", group, id), None).await.unwrap()
}

const M1: &str = "i-00000000000000a1";
const M2: &str = "i-00000000000000a2";
const M3: &str = "i-00000000000000a3";
const W1: &str = "i-00000000000000b1";

async fn three_managers_and_a_worker(l: &L, w: &World) {
    for (id, ip) in [(M1, "10.0.1.11"), (M2, "10.0.1.12"), (M3, "10.0.1.13")] {
        assert_eq!(launch(l, w, "mgr", id, ip).await.result, Some(ActionResult::Continue));
    }
    assert_eq!(
        launch(l, w, "wrk", W1, "10.0.1.21").await.result,
        Some(ActionResult::Continue)
    );
}

/// Three managers and a worker, M1 terminating: its drain outlasts the first command's slice
/// (the demotion comes in a command without one) and the swarm refuses that demotion once
/// ("update out of sequence": two managers demoted at once).
async fn manager_whose_demotion_is_refused_once(c: Config) -> (World, L) {
    let w = cluster();
    let l = lifecycle(&w, c);
    three_managers_and_a_worker(&l, &w).await;
    w.state().slow_drains = 1;
    w.state().demote_conflicts = 1;
    w.state().commands.clear();
    w.set_lifecycle(M1, "Terminating:Wait");
    (w, l)
}

/// The retire-node commands sent for `id` (to its operators; the instance's own halves aside).
fn retire_commands(w: &World, id: &str) -> usize {
    w.state()
        .commands
        .iter()
        .filter(|(i, n)| i != id && *n == "retire-node")
        .count()
}

/// A worker launched into a one-manager swarm whose first `late_ready` confirmations find
/// its node not Ready yet; the commands are those of the worker's join alone.
async fn worker_joined(late_ready: u32) -> World {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    w.state().commands.clear();
    w.state().late_ready = late_ready;
    let o = launch(&l, &w, "wrk", W1, "10.0.1.21").await;
    assert_eq!(o.result, Some(ActionResult::Continue));
    w
}

/// A worker retired while a service of its node cannot be placed anywhere, under
/// BLOCKED_DRAIN proceed or wait: how long the retirement took and the events it told.
async fn retire_a_worker_whose_drain_is_blocked(proceed: bool) -> (World, L, Duration, Vec<&'static str>) {
    let w = cluster();
    let mut c = cfg();
    c.blocked_drain_proceeds = proceed;
    let l = lifecycle(&w, c);
    three_managers_and_a_worker(&l, &w).await;
    w.state().blocked_service =
        Some("pinned|no suitable node (scheduling constraints not satisfied on 4 nodes)".into());
    // A drain command told not to stop at a blocked service waits its whole time.
    w.state().command_time.insert("drain", l.cfg.drain_timeout);
    w.set_lifecycle(W1, "Terminating:Wait");
    w.state().announced.clear();
    let started = tokio::time::Instant::now();
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    assert!(w.node_of(W1).is_none(), "the node was removed");
    let told = announced(&w).into_iter().map(|(t, _, _)| t).collect();
    (w, l, started.elapsed(), told)
}

/// (detail-type, instance, outcome) of every action event published.
fn announced(w: &World) -> Vec<(&'static str, Option<String>, String)> {
    w.state()
        .announced
        .iter()
        .map(|(_, e)| (e.detail_type(), e.instance_id.clone(), e.outcome.clone()))
        .collect()
}

/// Three managers and a worker whose instance is in Terminating:Wait; the hook's timeout.
async fn worker_about_to_terminate() -> (World, L, Duration) {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(W1, "Terminating:Wait");
    let timeout = l.cfg.terminate_heartbeat_timeout;
    (w, l, timeout)
}

/// W1 terminating and W2, a second worker, terminating too (its event in Lambda's queue, or
/// its own invocation running, as the test says); W1's retirement takes two hook timeouts.
async fn two_workers_terminating(c: Config) -> (World, L, Duration, &'static str) {
    let w = cluster();
    let l = lifecycle(&w, c);
    three_managers_and_a_worker(&l, &w).await;
    let w2 = "i-00000000000000b2";
    launch(&l, &w, "wrk", w2, "10.0.1.22").await;
    w.set_lifecycle(W1, "Terminating:Wait");
    w.set_lifecycle(w2, "Terminating:Wait");
    let timeout = l.cfg.terminate_heartbeat_timeout;
    w.state().command_time.insert("retire-node", timeout * 2);
    w.state().completed.clear();
    (w, l, timeout, w2)
}

fn ecs_event(status: &str, id: &str) -> Value {
    json!({
        "version": "0", "id": format!("ev-ecs-{status}-{id}"), "detail-type": "ECS Container Instance State Change",
        "source": "aws.ecs", "account": "123456789012", "time": "2026-11-21T00:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {
            "agentConnected": status == "ACTIVE", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/blue",
            "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/x",
            "ec2InstanceId": id, "status": status, "version": 2
        }
    })
}

fn ec2_event(detail_type: &str, detail: Value) -> Value {
    let time = chrono::DateTime::from_timestamp(unix_now() as i64, 0)
        .expect("time")
        .to_rfc3339();
    json!({
        "version": "0", "id": "ev-ec2", "detail-type": detail_type, "source": "aws.ec2",
        "account": "123456789012", "time": time, "region": "us-east-1", "resources": [], "detail": detail
    })
}

fn spot_warning(id: &str) -> Value {
    ec2_event(
        event::SPOT_WARNING_DETAIL_TYPE,
        json!({"instance-id": id, "instance-action": "terminate"}),
    )
}

fn state_change(id: &str, state: &str) -> Value {
    ec2_event(
        event::STATE_CHANGE_DETAIL_TYPE,
        json!({"instance-id": id, "state": state}),
    )
}

/// Three managers and a worker joined, with `ids` InService (what a notice finds).
async fn joined_in_service(ids: &[&str]) -> (World, L) {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    for id in ids {
        w.set_lifecycle(id, "InService");
    }
    (w, l)
}

fn health_event(id: &str, starts_unix: u64) -> Value {
    let start = chrono::DateTime::from_timestamp(starts_unix as i64, 0)
        .expect("time")
        .to_rfc2822();
    json!({
        "version": "0", "id": "ev-health", "detail-type": "AWS Health Event", "source": "aws.health",
        "account": "123456789012", "time": "2026-11-21T00:00:00Z", "region": "us-east-1", "resources": [id],
        "detail": {"service": "EC2", "eventTypeCategory": "scheduledChange",
                   "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "startTime": start,
                   "affectedEntities": [{"entityValue": id}]}
    })
}

/// Three managers and a worker in service, SERVICE_RECORD_SUFFIX set (`bus`: action events
/// told on one), services.sh answering `services` (`service\tNAME\tLABEL\tMODES` lines).
async fn service_names_cluster(services: &str, bus: bool) -> (World, L) {
    let w = cluster();
    let mut c = cfg();
    c.service_record_suffix = Some("apps.blue.internal".into());
    if !bus {
        c.event_bus = None;
    }
    let l = lifecycle(&w, c);
    three_managers_and_a_worker(&l, &w).await;
    for id in [M1, M2, M3, W1] {
        w.set_lifecycle(id, "InService");
    }
    w.state().services_out = services.into();
    (w, l)
}

/// `service_names_cluster` with a bus, after one reconcile run.
async fn with_service_names(services: &str) -> (World, L) {
    let (w, l) = service_names_cluster(services, true).await;
    l.reconcile_all(Some("blue"), false, None).await.unwrap();
    (w, l)
}

/// Instance `id` gone (out of its group, not described) and its node no longer Ready.
fn instance_gone(w: &World, id: &str) {
    let mut s = w.state();
    s.nodes
        .values_mut()
        .filter(|n| n.instance_id == id)
        .for_each(|n| n.ready = false);
    s.groups.iter_mut().for_each(|g| g.instances.retain(|i| i.id != id));
    s.instances.remove(id);
}

mod drain_check;
mod ecs;
mod edge;
mod join;
mod notice;
mod queued;
mod reconcile;
mod retire;
