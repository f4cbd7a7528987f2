//! Auto Scaling and EC2 behind the `Fleet` port: groups, lifecycle actions, instances.
//! One API per method and its error mapping; no decisions.

use aws_sdk_autoscaling::types::Filter;
use swarm_core::event::LifecycleAction;
use swarm_core::model::{Group, GroupInstance, Instance, InstanceState};
use swarm_core::ports::{ActionResult, Fleet, PortError, PortResult};

use crate::{aws_error, code_of, OnFirstUse, SdkConfig};

pub struct AwsFleet {
    asg: OnFirstUse<aws_sdk_autoscaling::Client>,
    ec2: OnFirstUse<aws_sdk_ec2::Client>,
}

impl AwsFleet {
    pub fn new(asg: aws_sdk_autoscaling::Client, ec2: aws_sdk_ec2::Client) -> Self {
        AwsFleet {
            asg: OnFirstUse::Ready(asg),
            ec2: OnFirstUse::Ready(ec2),
        }
    }

    /// Each client built when first called.
    pub fn on_first_use(conf: &SdkConfig) -> Self {
        AwsFleet {
            asg: OnFirstUse::lazy(conf, aws_sdk_autoscaling::Client::new),
            ec2: OnFirstUse::lazy(conf, aws_sdk_ec2::Client::new),
        }
    }

    async fn groups(&self, names: Option<Vec<String>>, filter: Option<Filter>) -> PortResult<Vec<Group>> {
        let mut pages = self
            .asg
            .get()
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(names)
            .set_filters(filter.map(|f| vec![f]))
            .max_records(100)
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(g) = pages.next().await {
            let g = g.map_err(|e| aws_error("DescribeAutoScalingGroups", &e))?;
            out.push(Group {
                name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
                tags: g
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_string(),
                            t.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
                instances: g
                    .instances()
                    .iter()
                    .map(|i| GroupInstance {
                        id: i.instance_id().unwrap_or_default().to_string(),
                        lifecycle_state: i.lifecycle_state().map(|s| s.as_str()).unwrap_or_default().into(),
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    fn action_error<E, R>(
        op: &str,
        action: &LifecycleAction,
        e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> PortError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        // AWS answers ValidationError "No active Lifecycle Action found with …" once an
        // action was completed, timed out, or its instance is gone.
        let err = aws_error(op, e);
        if code_of(e) == Some("ValidationError") && err.to_string().contains("No active Lifecycle Action") {
            return PortError::NoActiveAction(action.instance_id.clone());
        }
        err
    }
}

/// EC2's scheduled event codes ("instance-reboot | system-reboot | system-maintenance |
/// instance-retirement | instance-stop").
const SCHEDULED_CODES: [&str; 5] = [
    "instance-reboot",
    "system-reboot",
    "system-maintenance",
    "instance-retirement",
    "instance-stop",
];

impl Fleet for AwsFleet {
    async fn describe_groups(&self, names: &[String]) -> PortResult<Vec<Group>> {
        self.groups(Some(names.to_vec()), None).await
    }

    async fn groups_tagged(&self, tag_key: &str, value: &str) -> PortResult<Vec<Group>> {
        let f = Filter::builder().name(format!("tag:{tag_key}")).values(value).build();
        self.groups(None, Some(f)).await
    }

    async fn instance_groups(&self, ids: &[String]) -> PortResult<Vec<(String, GroupInstance)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(50) {
            let mut items = self
                .asg
                .get()
                .describe_auto_scaling_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .into_paginator()
                .items()
                .send();
            while let Some(i) = items.next().await {
                let i = i.map_err(|e| aws_error("DescribeAutoScalingInstances", &e))?;
                out.push((
                    i.auto_scaling_group_name().unwrap_or_default().to_string(),
                    GroupInstance {
                        id: i.instance_id().unwrap_or_default().to_string(),
                        lifecycle_state: i.lifecycle_state().unwrap_or_default().into(),
                    },
                ));
            }
        }
        Ok(out)
    }

    async fn lifecycle_hooks(&self, group: &str) -> PortResult<Vec<(String, String)>> {
        let resp = self
            .asg
            .get()
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| aws_error("DescribeLifecycleHooks", &e))?;
        Ok(resp
            .lifecycle_hooks()
            .iter()
            .map(|h| {
                (
                    h.lifecycle_hook_name().unwrap_or_default().to_string(),
                    h.lifecycle_transition().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    async fn describe_instances(&self, ids: &[String]) -> PortResult<Vec<Instance>> {
        let mut out = Vec::new();
        // A filter (not InstanceIds) so that unknown ids are absent rather than an error.
        for chunk in ids.chunks(200) {
            let mut reservations = self
                .ec2
                .get()
                .describe_instances()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("instance-id")
                        .set_values(Some(chunk.to_vec()))
                        .build(),
                )
                .into_paginator()
                .items()
                .send();
            while let Some(r) = reservations.next().await {
                let r = r.map_err(|e| aws_error("DescribeInstances", &e))?;
                for i in r.instances() {
                    let Some(state) = i
                        .state()
                        .and_then(|s| s.name())
                        .and_then(|n| InstanceState::parse(n.as_str()))
                    else {
                        continue;
                    };
                    out.push(Instance {
                        id: i.instance_id().unwrap_or_default().to_string(),
                        state,
                        private_ip: i.private_ip_address().and_then(|ip| ip.parse().ok()),
                        launched_unix: i.launch_time().map(|t| t.secs().max(0) as u64),
                        zone: i.placement().and_then(|p| p.availability_zone()).map(str::to_string),
                        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
                        spot: i.instance_lifecycle() == Some(&aws_sdk_ec2::types::InstanceLifecycleType::Spot),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn scheduled_changes(&self) -> PortResult<Vec<(String, u64)>> {
        // Filtered by event code: one paginated listing whatever the cluster's size, and no
        // InvalidInstanceID.NotFound for an instance gone meanwhile.
        let mut pages = self
            .ec2
            .get()
            .describe_instance_status()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("event.code")
                    .set_values(Some(SCHEDULED_CODES.iter().map(|c| c.to_string()).collect()))
                    .build(),
            )
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(status) = pages.next().await {
            let status = status.map_err(|e| aws_error("DescribeInstanceStatus", &e))?;
            let Some(id) = status.instance_id() else { continue };
            // "[Completed]" or "[Canceled]" open the description of an event that is over.
            let start = status
                .events()
                .iter()
                .filter(|e| !e.description().unwrap_or_default().starts_with('['))
                .filter_map(|e| e.not_before().map(|t| t.secs().max(0) as u64))
                .min();
            if let Some(t) = start {
                out.push((id.to_string(), t));
            }
        }
        Ok(out)
    }

    async fn complete_action(&self, action: &LifecycleAction, result: ActionResult) -> PortResult<()> {
        self.asg
            .get()
            .complete_lifecycle_action()
            .auto_scaling_group_name(&action.group)
            .lifecycle_hook_name(&action.hook)
            .set_lifecycle_action_token(Some(action.token.clone()).filter(|t| !t.is_empty()))
            .instance_id(&action.instance_id)
            .lifecycle_action_result(result.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Self::action_error("CompleteLifecycleAction", action, &e))
    }

    async fn record_heartbeat(&self, action: &LifecycleAction) -> PortResult<()> {
        self.asg
            .get()
            .record_lifecycle_action_heartbeat()
            .auto_scaling_group_name(&action.group)
            .lifecycle_hook_name(&action.hook)
            .set_lifecycle_action_token(Some(action.token.clone()).filter(|t| !t.is_empty()))
            .instance_id(&action.instance_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Self::action_error("RecordLifecycleActionHeartbeat", action, &e))
    }

    async fn terminate_in_group(&self, instance_id: &str, decrement: bool) -> PortResult<()> {
        self.asg
            .get()
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance_id)
            .should_decrement_desired_capacity(decrement)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("TerminateInstanceInAutoScalingGroup", &e))
    }
}
