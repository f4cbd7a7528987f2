//! SSM Run Command behind the `Remote` port: commands sent, polled in batches, read back.
//! One API per method and its error mapping; no decisions.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_ssm::types::{CommandInvocationStatus, InstanceInformationStringFilter, PingStatus};
use swarm_core::ports::{CommandResult, CommandStatus, PortError, PortResult, Remote};
use tokio::time::Instant;

use crate::{aws_error, code_of, OnFirstUse, SdkConfig};

const DOCUMENT: &str = "AWS-RunShellScript";

pub struct AwsRemote {
    client: OnFirstUse<aws_sdk_ssm::Client>,
}

impl AwsRemote {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        AwsRemote {
            client: OnFirstUse::Ready(client),
        }
    }

    /// The client built when first called.
    pub fn on_first_use(conf: &SdkConfig) -> Self {
        AwsRemote {
            client: OnFirstUse::lazy(conf, aws_sdk_ssm::Client::new),
        }
    }

    /// One SendCommand of the shell script to `ids` (at most 50); its command id.
    async fn send_command(
        &self,
        ids: &[String],
        commands: Vec<String>,
        timeout: Duration,
        comment: &str,
    ) -> PortResult<String> {
        // The script is killed after executionTimeout (≥ 1 s); delivery may take up to
        // TimeoutSeconds, which AWS requires to be at least 30.
        let secs = timeout.as_secs().max(1);
        let resp = self
            .client
            .get()
            .send_command()
            .document_name(DOCUMENT)
            .set_instance_ids(Some(ids.to_vec()))
            .parameters("commands", commands)
            .parameters("executionTimeout", vec![secs.to_string()])
            .timeout_seconds(secs.max(30) as i32)
            .comment(comment.chars().take(100).collect::<String>())
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_invalid_instance_id())
                    || code_of(&e) == Some("InvalidInstanceId")
                {
                    PortError::NotOnline(ids.join(","))
                } else {
                    aws_error("SendCommand", &e)
                }
            })?;
        Ok(resp
            .command()
            .and_then(|c| c.command_id())
            .unwrap_or_default()
            .to_string())
    }

    /// One GetCommandInvocation: the result once final, `Ok(None)` while it runs, and
    /// `Err(None)` when SSM does not know the invocation (yet, right after SendCommand).
    async fn invocation(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> Result<Option<CommandResult>, Option<PortError>> {
        let resp = self
            .client
            .get()
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance_id)
            .send()
            .await;
        match resp {
            Ok(r) => {
                tracing::debug!(step = "poll", command_id, instance_id, status = ?r.status(), "command invocation");
                Ok(
                    final_status(r.status(), r.status_details()).map(|status| CommandResult {
                        instance_id: instance_id.to_string(),
                        status,
                        exit_code: r.response_code(),
                        stdout: r.standard_output_content().unwrap_or_default().to_string(),
                        stderr: r.standard_error_content().unwrap_or_default().to_string(),
                    }),
                )
            }
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_invocation_does_not_exist())
                    || code_of(&e) == Some("InvocationDoesNotExist") =>
            {
                Err(None)
            }
            Err(e) => Err(Some(aws_error("GetCommandInvocation", &e))),
        }
    }

    /// Polls one invocation until it is final or `end` passes.
    async fn wait(&self, command_id: &str, instance_id: &str, mut polls: Polls) -> PortResult<CommandResult> {
        loop {
            polls.pause().await;
            match self.invocation(command_id, instance_id).await {
                Ok(Some(r)) => return Ok(r),
                // Right after SendCommand the invocation may not be visible yet.
                Ok(None) | Err(None) => {}
                Err(Some(e)) => return Err(e),
            }
            if polls.past_end() {
                return Ok(timed_out(instance_id));
            }
        }
    }

    /// Polls every invocation of a command with one ListCommandInvocations a round (not one
    /// GetCommandInvocation per instance); only an output that may be truncated is fetched
    /// again in full.
    async fn wait_all(&self, command_id: &str, ids: &[String], mut polls: Polls) -> PortResult<Vec<CommandResult>> {
        let mut done: HashMap<String, CommandResult> = HashMap::new();
        while done.len() < ids.len() {
            polls.pause().await;
            self.list_round(command_id, &mut done).await?;
            tracing::debug!(
                step = "poll",
                command_id,
                done = done.len(),
                of = ids.len(),
                "command invocations"
            );
            if done.len() < ids.len() && polls.past_end() {
                break;
            }
        }
        Ok(ids
            .iter()
            .map(|id| done.remove(id).unwrap_or_else(|| timed_out(id)))
            .collect())
    }

    /// One ListCommandInvocations round (its pages): the invocations that are final and not in
    /// `done` yet go into it; the instances the command was listed on are returned.
    async fn list_round(&self, command_id: &str, done: &mut HashMap<String, CommandResult>) -> PortResult<Vec<String>> {
        let mut listed = vec![];
        let mut invocations = self
            .client
            .get()
            .list_command_invocations()
            .command_id(command_id)
            .details(true)
            .into_paginator()
            .items()
            .send();
        while let Some(inv) = invocations.next().await {
            let inv = inv.map_err(|e| aws_error("ListCommandInvocations", &e))?;
            let Some(id) = inv.instance_id() else { continue };
            listed.push(id.to_string());
            if done.contains_key(id) {
                continue;
            }
            let Some(status) = final_status(inv.status(), inv.status_details()) else {
                continue;
            };
            let plugin = inv.command_plugins().first();
            let output = plugin.and_then(|p| p.output()).unwrap_or_default();
            let result = if output.len() >= PLUGIN_OUTPUT_SAFE {
                self.wait(command_id, id, Polls::once()).await?
            } else {
                let (stdout, stderr) = split_plugin_output(output);
                CommandResult {
                    instance_id: id.to_string(),
                    status,
                    exit_code: plugin.map(|p| p.response_code()).unwrap_or(-1),
                    stdout,
                    stderr,
                }
            };
            done.insert(id.to_string(), result);
        }
        Ok(listed)
    }
}

/// The first poll comes when a command of its kind is usually done (the caller says), never
/// sooner than this: a command takes the better part of a second to be delivered, run and
/// reported (a probe ~0.5 s), so asking sooner only spends calls.
const FIRST_POLL: Duration = Duration::from_millis(800);
/// The wait between polls of a command doubles up to this (a join: 2, 6, 14, 22, 30 s…), so
/// a command that runs n times longer (a busy host, a long drain) costs about log2(n) more
/// polls, not n times as many; a join alone (~1.3 s) is answered by the first poll.
const MAX_POLL: Duration = Duration::from_secs(8);

fn first_poll(usual: Duration) -> Duration {
    usual.clamp(FIRST_POLL, MAX_POLL)
}

fn next_poll(delay: Duration) -> Duration {
    (delay * 2).min(MAX_POLL)
}

/// The agent reports a command it killed at its executionTimeout within about this.
const KILL_REPORTED: Duration = Duration::from_secs(1);
/// A command with no final status this long after its timeout is reported TimedOut here.
const NO_REPORT_GRACE: Duration = Duration::from_secs(10);

/// When to ask SSM about a command just sent.
struct Polls {
    delay: Duration,
    /// The script is killed by then (sent + executionTimeout): a poll comes right after, so a
    /// hung command is known at its timeout, not up to MAX_POLL later.
    killed: Instant,
    end: Instant,
}

impl Polls {
    fn new(usual: Duration, timeout: Duration) -> Self {
        Self::sent_at(Instant::now(), usual, timeout)
    }

    fn sent_at(sent: Instant, usual: Duration, timeout: Duration) -> Self {
        Polls {
            delay: first_poll(usual),
            killed: sent + timeout + KILL_REPORTED,
            end: sent + timeout + NO_REPORT_GRACE,
        }
    }

    /// One poll now, and no other.
    fn once() -> Self {
        let now = Instant::now();
        Polls {
            delay: Duration::ZERO,
            killed: now,
            end: now,
        }
    }

    async fn pause(&mut self) {
        tokio::time::sleep(self.wait_from(Instant::now(), jittered(self.delay))).await;
        self.delay = next_poll(self.delay);
    }

    /// The wait before the next poll: `delay`, cut at the kill (while it is ahead) and at the end.
    fn wait_from(&self, now: Instant, delay: Duration) -> Duration {
        let mut d = delay.min(self.end.saturating_duration_since(now));
        if now < self.killed {
            d = d.min(self.killed - now);
        }
        d
    }

    fn past_end(&self) -> bool {
        Instant::now() >= self.end
    }
}

/// ±20%: the functions of a scale-out, started together, do not poll SSM in lockstep.
fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(0.8 + rand::random::<f64>() * 0.4)
}
/// ListCommandInvocations returns at most the first 2,500 characters of a plugin's output;
/// anything this long may be cut and is read again with GetCommandInvocation.
const PLUGIN_OUTPUT_SAFE: usize = 2400;
/// How a plugin's combined output separates standard error from standard output.
const ERROR_MARKER: &str = "----------ERROR-------";

fn final_status(status: Option<&CommandInvocationStatus>, details: Option<&str>) -> Option<CommandStatus> {
    let status = match status? {
        CommandInvocationStatus::Success => CommandStatus::Success,
        CommandInvocationStatus::Failed => CommandStatus::Failed,
        CommandInvocationStatus::TimedOut => CommandStatus::TimedOut,
        CommandInvocationStatus::Cancelled => CommandStatus::Cancelled,
        _ => return None,
    };
    // Undeliverable: AWS reports Failed with StatusDetails "Undeliverable"/"Terminated".
    Some(match details {
        Some("Undeliverable") | Some("Terminated") | Some("DeliveryTimedOut") => CommandStatus::Undeliverable,
        _ => status,
    })
}

fn split_plugin_output(output: &str) -> (String, String) {
    match output.split_once(ERROR_MARKER) {
        Some((out, err)) => (
            out.strip_suffix('\n').unwrap_or(out).to_string(),
            err.strip_prefix('\n').unwrap_or(err).to_string(),
        ),
        None => (output.to_string(), String::new()),
    }
}

fn timed_out(instance_id: &str) -> CommandResult {
    CommandResult {
        instance_id: instance_id.to_string(),
        status: CommandStatus::TimedOut,
        exit_code: -1,
        stdout: String::new(),
        stderr: "no final status before the deadline".into(),
    }
}

impl Remote for AwsRemote {
    async fn online(&self, ids: &[String]) -> PortResult<Vec<String>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(50) {
            let filter = InstanceInformationStringFilter::builder()
                .key("InstanceIds")
                .set_values(Some(chunk.to_vec()))
                .build()
                .map_err(|e| PortError::aws("DescribeInstanceInformation", e))?;
            let mut agents = self
                .client
                .get()
                .describe_instance_information()
                .filters(filter)
                .max_results(50)
                .into_paginator()
                .items()
                .send();
            while let Some(i) = agents.next().await {
                let i = i.map_err(|e| aws_error("DescribeInstanceInformation", &e))?;
                if i.ping_status() == Some(&PingStatus::Online) {
                    out.extend(i.instance_id().map(str::to_string));
                }
            }
        }
        Ok(out)
    }

    async fn run(
        &self,
        ids: &[String],
        commands: Vec<String>,
        timeout: Duration,
        usual: Duration,
        comment: &str,
    ) -> PortResult<Vec<CommandResult>> {
        let mut results = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(50) {
            let command_id = self.send_command(chunk, commands.clone(), timeout, comment).await?;
            let polls = Polls::new(usual, timeout);
            if let [one] = chunk {
                results.push(self.wait(&command_id, one, polls).await?);
            } else {
                results.extend(self.wait_all(&command_id, chunk, polls).await?);
            }
        }
        Ok(results)
    }

    async fn send(
        &self,
        ids: &[String],
        commands: Vec<String>,
        timeout: Duration,
        comment: &str,
    ) -> PortResult<String> {
        self.send_command(ids, commands, timeout, comment).await
    }

    async fn results(&self, command_id: &str, ids: &[String]) -> PortResult<Vec<Option<CommandResult>>> {
        let [first, ..] = ids else {
            return Ok(vec![]);
        };
        if ids.len() == 1 {
            return Ok(vec![self.result(command_id, first).await?]);
        }
        let mut done = HashMap::new();
        if !self.list_round(command_id, &mut done).await?.contains(first) {
            return Err(lost(command_id, first));
        }
        Ok(ids.iter().map(|id| done.remove(id)).collect())
    }

    async fn result(&self, command_id: &str, id: &str) -> PortResult<Option<CommandResult>> {
        match self.invocation(command_id, id).await {
            Ok(r) => Ok(r),
            // Sent a period ago: a command SSM does not know is lost, asking again cannot help.
            Err(None) => Err(lost(command_id, id)),
            Err(Some(e)) => Err(e),
        }
    }
}

/// A command SSM does not know on `id`, sent a period ago: lost, asking again cannot help.
fn lost(command_id: &str, id: &str) -> PortError {
    PortError::Invalid {
        operation: "GetCommandInvocation".into(),
        message: format!("InvocationDoesNotExist: {command_id} on {id}"),
    }
}

#[cfg(test)]
mod poll_tests {
    use super::*;
    use swarm_core::ports::{USUAL_COMMAND, USUAL_JOIN};

    const HOUR: Duration = Duration::from_secs(3600);

    /// Polls (without jitter) until a command final after `length` (its executionTimeout
    /// `timeout`) is seen final, and when.
    fn polls_until(length: Duration, usual: Duration, timeout: Duration) -> (u32, Duration) {
        let t0 = Instant::now();
        let mut p = Polls::sent_at(t0, usual, timeout);
        let (mut at, mut n) = (Duration::ZERO, 0);
        while at < length && t0 + at < p.end {
            at += p.wait_from(t0 + at, p.delay);
            p.delay = next_poll(p.delay);
            n += 1;
        }
        (n, at)
    }

    fn polls(length: Duration, usual: Duration) -> u32 {
        polls_until(length, usual, HOUR).0
    }

    #[test]
    fn a_command_killed_at_its_timeout_is_seen_right_after_it() {
        let timeout = Duration::from_secs(10);
        let hung = timeout + Duration::from_millis(500);
        assert_eq!(
            polls_until(hung, USUAL_JOIN, timeout),
            (3, timeout + KILL_REPORTED),
            "2, 6, then 11 s (not 14)"
        );
        // An agent that never reports: the caller is told TimedOut at the end, not later.
        let (_, at) = polls_until(HOUR, USUAL_JOIN, timeout);
        assert_eq!(at, timeout + NO_REPORT_GRACE);
    }

    #[test]
    fn polls_grow_with_the_log_of_a_command_s_length_then_every_max_poll() {
        assert_eq!(polls(Duration::from_millis(1300), USUAL_JOIN), 1, "a join alone");
        assert_eq!(
            polls(Duration::from_secs(20), USUAL_JOIN),
            4,
            "a join among twenty on a busy machine"
        );
        assert_eq!(polls(Duration::from_millis(500), USUAL_COMMAND), 1, "a probe");
        assert_eq!(
            polls(Duration::from_secs(1), Duration::ZERO),
            2,
            "never sooner than FIRST_POLL"
        );
        assert!(
            polls(Duration::from_secs(300), USUAL_COMMAND) <= 40,
            "a five-minute drain"
        );
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(1));
            assert!(
                j >= Duration::from_millis(800) && j <= Duration::from_millis(1200),
                "{j:?}"
            );
        }
    }
}
