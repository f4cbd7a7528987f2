use std::time::Duration;

use aws_sdk_ssm::types::{CommandInvocationStatus, InstanceInformationStringFilter, ParameterType, PingStatus};
use swarm_core::ports::{CommandResult, CommandStatus, Parameters, PortError, PortResult, Remote};
use tokio::time::Instant;

use crate::{aws_error, code_of};

const DOCUMENT: &str = "AWS-RunShellScript";

pub struct AwsRemote {
    client: aws_sdk_ssm::Client,
}

impl AwsRemote {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        AwsRemote { client }
    }

    /// Polls one invocation until it is final or `end` passes.
    async fn wait(&self, command_id: &str, instance_id: &str, end: Instant) -> PortResult<CommandResult> {
        let mut delay = Duration::from_millis(200);
        loop {
            let resp = self
                .client
                .get_command_invocation()
                .command_id(command_id)
                .instance_id(instance_id)
                .send()
                .await;
            match resp {
                Ok(r) => {
                    let status = match r.status() {
                        Some(CommandInvocationStatus::Success) => Some(CommandStatus::Success),
                        Some(CommandInvocationStatus::Failed) => Some(CommandStatus::Failed),
                        Some(CommandInvocationStatus::TimedOut) => Some(CommandStatus::TimedOut),
                        Some(CommandInvocationStatus::Cancelled) => Some(CommandStatus::Cancelled),
                        _ => None,
                    };
                    if let Some(status) = status {
                        // Undeliverable: AWS reports Failed with StatusDetails "Undeliverable"/"Terminated".
                        let status = match r.status_details() {
                            Some("Undeliverable") | Some("Terminated") | Some("DeliveryTimedOut") => {
                                CommandStatus::Undeliverable
                            }
                            _ => status,
                        };
                        return Ok(CommandResult {
                            instance_id: instance_id.to_string(),
                            status,
                            exit_code: r.response_code(),
                            stdout: r.standard_output_content().unwrap_or_default().to_string(),
                            stderr: r.standard_error_content().unwrap_or_default().to_string(),
                        });
                    }
                }
                // Right after SendCommand the invocation may not be visible yet.
                Err(e)
                    if e.as_service_error().is_some_and(|s| s.is_invocation_does_not_exist())
                        || code_of(&e) == Some("InvocationDoesNotExist") => {}
                Err(e) => return Err(aws_error("GetCommandInvocation", &e)),
            }
            if Instant::now() >= end {
                return Ok(CommandResult {
                    instance_id: instance_id.to_string(),
                    status: CommandStatus::TimedOut,
                    exit_code: -1,
                    stdout: String::new(),
                    stderr: "no final status before the deadline".into(),
                });
            }
            tokio::time::sleep(delay.min(end.saturating_duration_since(Instant::now()))).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(2));
        }
    }
}

impl Remote for AwsRemote {
    async fn online(&self, ids: &[String]) -> PortResult<Vec<String>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(50) {
            let mut token = None;
            loop {
                let filter = InstanceInformationStringFilter::builder()
                    .key("InstanceIds")
                    .set_values(Some(chunk.to_vec()))
                    .build()
                    .map_err(|e| PortError::aws("DescribeInstanceInformation", e))?;
                let resp = self
                    .client
                    .describe_instance_information()
                    .filters(filter)
                    .max_results(50)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| aws_error("DescribeInstanceInformation", &e))?;
                out.extend(
                    resp.instance_information_list()
                        .iter()
                        .filter(|i| i.ping_status() == Some(&PingStatus::Online))
                        .filter_map(|i| i.instance_id().map(str::to_string)),
                );
                token = resp.next_token().map(str::to_string);
                if token.is_none() {
                    break;
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
        comment: &str,
    ) -> PortResult<Vec<CommandResult>> {
        let secs = timeout.as_secs().max(30);
        let end = Instant::now() + timeout + Duration::from_secs(10);
        let mut results = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(50) {
            let resp = self
                .client
                .send_command()
                .document_name(DOCUMENT)
                .set_instance_ids(Some(chunk.to_vec()))
                .parameters("commands", commands.clone())
                .parameters("executionTimeout", vec![secs.to_string()])
                .timeout_seconds(secs as i32)
                .comment(comment.chars().take(100).collect::<String>())
                .send()
                .await
                .map_err(|e| {
                    if e.as_service_error().is_some_and(|s| s.is_invalid_instance_id())
                        || code_of(&e) == Some("InvalidInstanceId")
                    {
                        PortError::NotOnline(chunk.join(","))
                    } else {
                        aws_error("SendCommand", &e)
                    }
                })?;
            let command_id = resp
                .command()
                .and_then(|c| c.command_id())
                .unwrap_or_default()
                .to_string();
            for id in chunk {
                results.push(self.wait(&command_id, id, end).await?);
            }
        }
        Ok(results)
    }
}

/// Parameter Store: the init lock. Join tokens are written and read only on instances.
pub struct AwsParameters {
    client: aws_sdk_ssm::Client,
}

impl AwsParameters {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        AwsParameters { client }
    }
}

impl Parameters for AwsParameters {
    async fn create(&self, name: &str, value: &str) -> PortResult<bool> {
        let r = self
            .client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(false)
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_parameter_already_exists())
                    || code_of(&e) == Some("ParameterAlreadyExists") =>
            {
                Ok(false)
            }
            Err(e) => Err(aws_error("PutParameter", &e)),
        }
    }

    async fn list(&self, path: &str) -> PortResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .client
                .get_parameters_by_path()
                .path(path)
                .recursive(true)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| aws_error("GetParametersByPath", &e))?;
            out.extend(resp.parameters().iter().map(|p| {
                (
                    p.name().unwrap_or_default().to_string(),
                    p.value().unwrap_or_default().to_string(),
                )
            }));
            token = resp.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}
