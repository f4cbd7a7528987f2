//! SSM Run Command behind the `Remote` port: commands sent, polled in batches, read back.
//! One API per method and its error mapping; no decisions.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_ssm::types::{CommandInvocationStatus, InstanceInformationStringFilter, PingStatus};
use swarm_core::ports::{CommandResult, CommandStatus, PortError, PortResult, Remote};

use crate::{aws_error, code_of, OnFirstUse, SdkConfig};

mod polls;
use polls::Polls;

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
