//! Adapter tests: the requests each adapter sends, and how AWS errors map to port errors.
//! (aws-smithy-mocks answers in place of AWS; the local cloud proves the same code end to end.)

use std::time::Duration;

use aws_sdk_autoscaling::operation::complete_lifecycle_action::{
    CompleteLifecycleActionError, CompleteLifecycleActionOutput,
};
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::types::{AutoScalingGroup, Instance as AsgInstance, LifecycleState, TagDescription};
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::types::{Instance as Ec2Instance, InstanceState as Ec2State, InstanceStateName, Reservation};
use aws_sdk_route53::operation::change_resource_record_sets::{
    ChangeResourceRecordSetsError, ChangeResourceRecordSetsOutput,
};
use aws_sdk_route53::types::{ChangeAction, ChangeInfo, ChangeStatus, RrType};
use aws_sdk_ssm::operation::get_command_invocation::{GetCommandInvocationError, GetCommandInvocationOutput};
use aws_sdk_ssm::operation::put_parameter::{PutParameterError, PutParameterOutput};
use aws_sdk_ssm::operation::send_command::SendCommandOutput;
use aws_sdk_ssm::types::{Command, CommandInvocationStatus};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use swarm_core::event::LifecycleAction;
use swarm_core::model::{InstanceState, ManagerRecord};
use swarm_core::ports::{
    ActionResult, Announce, CommandResult, CommandStatus, Dns, Fleet, Parameters, PortError, PortResult, RecordChange,
    Remote, USUAL_COMMAND,
};

use crate::{AwsDns, AwsEvents, AwsFleet, AwsParameters, AwsRemote};

fn action() -> LifecycleAction {
    LifecycleAction {
        group: "mgr".into(),
        hook: "swarm-terminate".into(),
        token: "tok".into(),
        instance_id: "i-0123456789abcdef0".into(),
        started_unix: None,
    }
}

fn fleet(asg: aws_sdk_autoscaling::Client, ec2: aws_sdk_ec2::Client) -> AwsFleet {
    AwsFleet::new(asg, ec2)
}

#[tokio::test]
async fn complete_sends_the_action_and_maps_no_active_action() {
    let ok = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action)
        .match_requests(|r| {
            r.auto_scaling_group_name() == Some("mgr")
                && r.lifecycle_hook_name() == Some("swarm-terminate")
                && r.lifecycle_action_token() == Some("tok")
                && r.instance_id() == Some("i-0123456789abcdef0")
                && r.lifecycle_action_result() == Some("CONTINUE")
        })
        .then_output(|| CompleteLifecycleActionOutput::builder().build());
    let gone = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action).then_error(|| {
        CompleteLifecycleActionError::generic(
            ErrorMetadata::builder()
                .code("ValidationError")
                .message("No active Lifecycle Action found with instance ID i-0123456789abcdef0")
                .build(),
        )
    });
    let asg = mock_client!(aws_sdk_autoscaling, RuleMode::Sequential, [&ok, &gone]);
    let ec2 = mock_client!(aws_sdk_ec2, []);
    let f = fleet(asg, ec2);
    f.complete_action(&action(), ActionResult::Continue).await.unwrap();
    assert_eq!(
        f.complete_action(&action(), ActionResult::Continue).await,
        Err(PortError::NoActiveAction("i-0123456789abcdef0".into()))
    );
    assert_eq!(ok.num_calls(), 1);
}

#[tokio::test]
async fn cluster_groups_are_found_by_tag_filter() {
    let rule = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .match_requests(|r| {
            r.filters().len() == 1
                && r.filters()[0].name() == Some("tag:swarm:cluster")
                && r.filters()[0].values() == ["blue"]
        })
        .then_output(|| {
            DescribeAutoScalingGroupsOutput::builder()
                .auto_scaling_groups(
                    AutoScalingGroup::builder()
                        .auto_scaling_group_name("blue-managers")
                        .tags(TagDescription::builder().key("swarm:role").value("manager").build())
                        .instances(
                            AsgInstance::builder()
                                .instance_id("i-0123456789abcdef0")
                                .lifecycle_state(LifecycleState::TerminatingWait)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let f = fleet(
        mock_client!(aws_sdk_autoscaling, [&rule]),
        mock_client!(aws_sdk_ec2, []),
    );
    let groups = f.groups_tagged("swarm:cluster", "blue").await.unwrap();
    assert_eq!(groups[0].name, "blue-managers");
    assert_eq!(groups[0].tag("swarm:role"), Some("manager"));
    assert_eq!(
        groups[0].instances[0].lifecycle_state,
        swarm_core::model::LifecycleState::TerminatingWait
    );
    assert!(groups[0].instances[0].is_leaving());
}

#[tokio::test]
async fn instances_are_described_by_filter_so_unknown_ids_are_not_errors() {
    let rule = mock!(aws_sdk_ec2::Client::describe_instances)
        .match_requests(|r| r.instance_ids().is_empty() && r.filters()[0].name() == Some("instance-id"))
        .then_output(|| {
            DescribeInstancesOutput::builder()
                .reservations(
                    Reservation::builder()
                        .instances(
                            Ec2Instance::builder()
                                .instance_id("i-0123456789abcdef0")
                                .private_ip_address("10.0.1.7")
                                .state(Ec2State::builder().name(InstanceStateName::ShuttingDown).build())
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let f = fleet(
        mock_client!(aws_sdk_autoscaling, []),
        mock_client!(aws_sdk_ec2, [&rule]),
    );
    let got = f
        .describe_instances(&["i-0123456789abcdef0".into(), "i-0000000000000dead".into()])
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].state, InstanceState::ShuttingDown);
    assert_eq!(got[0].private_ip, Some("10.0.1.7".parse().unwrap()));
}

#[tokio::test]
async fn scheduled_changes_are_listed_by_event_code_and_finished_ones_left_out() {
    use aws_sdk_ec2::operation::describe_instance_status::DescribeInstanceStatusOutput;
    use aws_sdk_ec2::types::{EventCode, InstanceStatus, InstanceStatusEvent};
    use aws_smithy_types::DateTime;
    let event = |desc: &str, t: i64| {
        InstanceStatusEvent::builder()
            .code(EventCode::InstanceRetirement)
            .description(desc)
            .not_before(DateTime::from_secs(t))
            .build()
    };
    let rule = mock!(aws_sdk_ec2::Client::describe_instance_status)
        .match_requests(|r| {
            r.instance_ids().is_empty()
                && r.filters()[0].name() == Some("event.code")
                && r.filters()[0].values().contains(&"instance-retirement".to_string())
        })
        .then_output(move || {
            DescribeInstanceStatusOutput::builder()
                .instance_statuses(
                    InstanceStatus::builder()
                        .instance_id("i-0123456789abcdef0")
                        .events(event("[Completed] The instance is running on degraded hardware", 100))
                        .events(event("The instance is running on degraded hardware", 2000))
                        .build(),
                )
                .instance_statuses(
                    InstanceStatus::builder()
                        .instance_id("i-0000000000000000a")
                        .events(event("[Canceled] Scheduled reboot", 300))
                        .build(),
                )
                .build()
        });
    let f = fleet(
        mock_client!(aws_sdk_autoscaling, []),
        mock_client!(aws_sdk_ec2, [&rule]),
    );
    assert_eq!(
        f.scheduled_changes().await.unwrap(),
        vec![("i-0123456789abcdef0".to_string(), 2000)]
    );
}

fn record() -> ManagerRecord {
    ManagerRecord {
        set_identifier: "i-0123456789abcdef0".into(),
        ip: "10.0.1.7".parse().unwrap(),
        ttl: 60,
    }
}

#[tokio::test]
async fn manager_records_are_per_instance_multivalue_answers() {
    let rule = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .match_requests(|r| {
            let c = &r.change_batch().unwrap().changes()[0];
            let rs = c.resource_record_set().unwrap();
            r.hosted_zone_id() == Some("Z1")
                && c.action() == &ChangeAction::Upsert
                && rs.name() == "managers.blue.internal."
                && rs.r#type() == &RrType::A
                && rs.set_identifier() == Some("i-0123456789abcdef0")
                && rs.multi_value_answer() == Some(true)
                && rs.ttl() == Some(60)
                && rs.resource_records()[0].value() == "10.0.1.7"
        })
        .then_output(|| {
            ChangeResourceRecordSetsOutput::builder()
                .change_info(
                    ChangeInfo::builder()
                        .id("/change/C1")
                        .status(ChangeStatus::Pending)
                        .submitted_at(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        });
    let dns = AwsDns::new(mock_client!(aws_sdk_route53, [&rule]));
    let id = dns
        .change("Z1", "managers.blue.internal", vec![RecordChange::Upsert(record())])
        .await
        .unwrap();
    assert_eq!(id, "/change/C1");
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn deleting_a_record_that_is_gone_is_in_sync() {
    let rule = mock!(aws_sdk_route53::Client::change_resource_record_sets).then_error(|| {
        ChangeResourceRecordSetsError::InvalidChangeBatch(
            aws_sdk_route53::types::error::InvalidChangeBatch::builder()
                .messages("Tried to delete resource record set [name='managers.blue.internal.', type='A'] but it was not found")
                .build(),
        )
    });
    let dns = AwsDns::new(mock_client!(aws_sdk_route53, [&rule]));
    let id = dns
        .change("Z1", "managers.blue.internal", vec![RecordChange::Delete(record())])
        .await
        .unwrap();
    assert!(dns.is_insync(&id).await.unwrap());
}

#[tokio::test]
async fn the_init_lock_is_a_conditional_create() {
    let won = mock!(aws_sdk_ssm::Client::put_parameter)
        .match_requests(|r| r.overwrite() == Some(false) && r.name() == Some("/swarm/blue/init-lock/0"))
        .then_output(|| PutParameterOutput::builder().version(1).build());
    let lost = mock!(aws_sdk_ssm::Client::put_parameter).then_error(|| {
        PutParameterError::ParameterAlreadyExists(aws_sdk_ssm::types::error::ParameterAlreadyExists::builder().build())
    });
    let p = AwsParameters::new(mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&won, &lost]));
    assert!(p.create("/swarm/blue/init-lock/0", "i-1 1").await.unwrap());
    assert!(!p.create("/swarm/blue/init-lock/0", "i-2 1").await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn commands_run_shell_script_and_wait_through_invocation_does_not_exist() {
    let send = mock!(aws_sdk_ssm::Client::send_command)
        .match_requests(|r| {
            r.document_name() == Some("AWS-RunShellScript")
                && r.instance_ids() == ["i-0123456789abcdef0"]
                && r.parameters().unwrap()["commands"] == vec!["export A='1'".to_string(), "echo ok".to_string()]
                && r.parameters().unwrap()["executionTimeout"] == vec!["60".to_string()]
        })
        .then_output(|| {
            SendCommandOutput::builder()
                .command(Command::builder().command_id("cmd-1").build())
                .build()
        });
    let get = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .sequence()
        .error(|| {
            GetCommandInvocationError::InvocationDoesNotExist(
                aws_sdk_ssm::types::error::InvocationDoesNotExist::builder().build(),
            )
        })
        .output(|| {
            GetCommandInvocationOutput::builder()
                .status(CommandInvocationStatus::InProgress)
                .build()
        })
        .output(|| {
            GetCommandInvocationOutput::builder()
                .status(CommandInvocationStatus::Failed)
                .status_details("Failed")
                .response_code(3)
                .standard_output_content("out")
                .standard_error_content("token missing")
                .build()
        })
        .build();
    let r = AwsRemote::new(mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&send, &get]));
    let res = r
        .run(
            &["i-0123456789abcdef0".into()],
            vec!["export A='1'".into(), "echo ok".into()],
            Duration::from_secs(60),
            USUAL_COMMAND,
            "test",
        )
        .await
        .unwrap();
    assert_eq!(res[0].status, CommandStatus::Failed);
    assert_eq!((res[0].exit_code, res[0].stderr.as_str()), (3, "token missing"));
    assert_eq!(get.num_calls(), 3);
}

/// A drain check reads a command once: running (None), final (its result), or unknown to SSM
/// (lost: rejected, not retried); sending returns the command id without polling.
#[tokio::test]
async fn a_command_sent_now_is_read_later_once() {
    let send = mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
        SendCommandOutput::builder()
            .command(Command::builder().command_id("cmd-9").build())
            .build()
    });
    let get = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .sequence()
        .output(|| {
            GetCommandInvocationOutput::builder()
                .status(CommandInvocationStatus::InProgress)
                .build()
        })
        .output(|| {
            GetCommandInvocationOutput::builder()
                .status(CommandInvocationStatus::Success)
                .response_code(0)
                .standard_output_content("remaining=0")
                .build()
        })
        .error(|| {
            GetCommandInvocationError::InvocationDoesNotExist(
                aws_sdk_ssm::types::error::InvocationDoesNotExist::builder().build(),
            )
        })
        .build();
    let r = AwsRemote::new(mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&send, &get]));
    let id = "i-0123456789abcdef0";
    let cmd = r
        .send(&[id.to_string()], vec!["true".into()], Duration::from_secs(60), "drain")
        .await
        .unwrap();
    assert_eq!((cmd.as_str(), get.num_calls()), ("cmd-9", 0));
    assert_eq!(r.result(&cmd, id).await.unwrap(), None);
    let done = r.result(&cmd, id).await.unwrap().expect("final");
    assert_eq!(
        (done.status, done.stdout.as_str()),
        (CommandStatus::Success, "remaining=0")
    );
    assert!(matches!(r.result(&cmd, id).await, Err(PortError::Invalid { .. })));
}

/// One invocation as ListCommandInvocations (Details) lists it: its status and its plugin's
/// exit code and output.
fn listed(id: &str, status: CommandInvocationStatus, code: i32, output: &str) -> aws_sdk_ssm::types::CommandInvocation {
    use aws_sdk_ssm::types::{CommandInvocation, CommandPlugin};
    CommandInvocation::builder()
        .instance_id(id)
        .status(status.clone())
        .status_details(status.as_str())
        .command_plugins(
            CommandPlugin::builder()
                .name("aws:runShellScript")
                .response_code(code)
                .output(output)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn both_halves_of_a_retirement_are_read_with_one_list_call() {
    use aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsOutput;
    let inv = |id: &str, status: CommandInvocationStatus, output: &str| listed(id, status, 0, output);
    let list = mock!(aws_sdk_ssm::Client::list_command_invocations)
        .match_requests(|r| r.command_id() == Some("cmd-r") && r.details() == Some(true))
        .sequence()
        .output(move || {
            ListCommandInvocationsOutput::builder()
                .command_invocations(inv("i-op", CommandInvocationStatus::Success, "removed=true\n"))
                .command_invocations(inv("i-me", CommandInvocationStatus::InProgress, ""))
                .build()
        })
        // A command SSM no longer lists on the operator: lost.
        .output(|| ListCommandInvocationsOutput::builder().build())
        .build();
    let r = AwsRemote::new(mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&list]));
    let ids: Vec<String> = vec!["i-op".into(), "i-me".into()];
    let found = r.results("cmd-r", &ids).await.unwrap();
    assert_eq!(list.num_calls(), 1);
    assert_eq!(found[0].as_ref().map(|r| r.stdout.as_str()), Some("removed=true\n"));
    assert!(found[1].is_none(), "still running on the leaving instance");
    let lost = r.results("cmd-r", &ids).await.unwrap_err();
    assert!(matches!(lost, PortError::Invalid { .. }), "{lost:?}");
}

/// `true` on `ids`, as a workflow's quick command.
async fn run_true(r: &AwsRemote, ids: &[String]) -> PortResult<Vec<CommandResult>> {
    r.run(ids, vec!["true".into()], Duration::from_secs(60), USUAL_COMMAND, "test")
        .await
}

#[tokio::test(start_paused = true)]
async fn a_command_on_several_instances_is_polled_with_one_list_call_a_round() {
    use aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsOutput;
    let inv = listed;
    let send = mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
        SendCommandOutput::builder()
            .command(Command::builder().command_id("cmd-2").build())
            .build()
    });
    let long = "x".repeat(2500);
    let list = mock!(aws_sdk_ssm::Client::list_command_invocations)
        .match_requests(|r| r.command_id() == Some("cmd-2") && r.details() == Some(true))
        .sequence()
        .output(move || {
            ListCommandInvocationsOutput::builder()
                .command_invocations(inv("i-1", CommandInvocationStatus::Success, 0, "swarm=active\n"))
                .command_invocations(inv("i-2", CommandInvocationStatus::InProgress, -1, ""))
                .build()
        })
        .output(move || {
            ListCommandInvocationsOutput::builder()
                .command_invocations(inv("i-1", CommandInvocationStatus::Success, 0, "swarm=active\n"))
                .command_invocations(inv(
                    "i-2",
                    CommandInvocationStatus::Failed,
                    4,
                    "control=true\n\n----------ERROR-------\nno Ready node",
                ))
                .command_invocations(inv("i-3", CommandInvocationStatus::Success, 0, &long))
                .build()
        })
        .build();
    // An output that may have been cut is read again in full.
    let get = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .match_requests(|r| r.instance_id() == Some("i-3"))
        .then_output(|| {
            GetCommandInvocationOutput::builder()
                .status(CommandInvocationStatus::Success)
                .response_code(0)
                .standard_output_content("full output")
                .build()
        });
    let r = AwsRemote::new(mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&send, &list, &get]));
    let ids: Vec<String> = vec!["i-1".into(), "i-2".into(), "i-3".into()];
    let res = run_true(&r, &ids).await.unwrap();
    assert_eq!(list.num_calls(), 2);
    assert_eq!(get.num_calls(), 1);
    assert_eq!(
        (res[0].status, res[0].stdout.as_str()),
        (CommandStatus::Success, "swarm=active\n")
    );
    assert_eq!(
        (
            res[1].status,
            res[1].exit_code,
            res[1].stdout.as_str(),
            res[1].stderr.as_str()
        ),
        (CommandStatus::Failed, 4, "control=true\n", "no Ready node")
    );
    assert_eq!(res[2].stdout, "full output");
}

#[tokio::test]
async fn deleting_a_record_whose_values_changed_deletes_what_is_there() {
    use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
    use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet};
    // The record was written with TTL 60; someone changed it to 300 since.
    let stale = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .match_requests(|r| r.change_batch().unwrap().changes()[0].resource_record_set().unwrap().ttl() == Some(60))
        .then_error(|| {
            ChangeResourceRecordSetsError::InvalidChangeBatch(
                aws_sdk_route53::types::error::InvalidChangeBatch::builder()
                    .messages("Tried to delete resource record set [name='managers.blue.internal.', type='A', set-identifier='i-0123456789abcdef0'] but the values provided do not match the current values")
                    .build(),
            )
        });
    let list = mock!(aws_sdk_route53::Client::list_resource_record_sets).then_output(|| {
        ListResourceRecordSetsOutput::builder()
            .resource_record_sets(
                ResourceRecordSet::builder()
                    .name("managers.blue.internal.")
                    .r#type(RrType::A)
                    .set_identifier("i-0123456789abcdef0")
                    .multi_value_answer(true)
                    .ttl(300)
                    .resource_records(ResourceRecord::builder().value("10.0.1.7").build().unwrap())
                    .build()
                    .unwrap(),
            )
            .is_truncated(false)
            .max_items(100)
            .build()
            .unwrap()
    });
    let fresh = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .match_requests(|r| {
            let c = &r.change_batch().unwrap().changes()[0];
            c.action() == &ChangeAction::Delete && c.resource_record_set().unwrap().ttl() == Some(300)
        })
        .then_output(|| {
            ChangeResourceRecordSetsOutput::builder()
                .change_info(
                    ChangeInfo::builder()
                        .id("/change/C2")
                        .status(ChangeStatus::Pending)
                        .submitted_at(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        });
    let dns = AwsDns::new(mock_client!(
        aws_sdk_route53,
        RuleMode::MatchAny,
        [&stale, &list, &fresh]
    ));
    let id = dns
        .change("Z1", "managers.blue.internal", vec![RecordChange::Delete(record())])
        .await
        .unwrap();
    assert_eq!(id, "/change/C2");
    assert_eq!((stale.num_calls(), list.num_calls(), fresh.num_calls()), (1, 1, 1));
}

#[tokio::test]
async fn a_denied_call_is_a_refusal_and_is_not_asked_again() {
    use aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsError;
    let send = mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
        SendCommandOutput::builder()
            .command(Command::builder().command_id("cmd-3").build())
            .build()
    });
    let list = mock!(aws_sdk_ssm::Client::list_command_invocations).then_error(|| {
        ListCommandInvocationsError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("User: arn:aws:sts::123456789012:assumed-role/LifecycleRole/x is not authorized to perform: ssm:ListCommandInvocations")
                .build(),
        )
    });
    let r = AwsRemote::new(mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&send, &list]));
    let ids: Vec<String> = vec!["i-1".into(), "i-2".into()];
    let res = run_true(&r, &ids).await;
    assert!(
        matches!(res, Err(PortError::Denied { ref operation, .. }) if operation == "ListCommandInvocations"),
        "{res:?}"
    );
    assert_eq!(list.num_calls(), 1);
}

#[tokio::test]
async fn a_rejected_request_is_final_and_is_not_asked_again() {
    use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsError;
    let rule = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_error(|| {
        DescribeAutoScalingGroupsError::generic(
            ErrorMetadata::builder()
                .code("ValidationError")
                .message("1 validation error detected: Value at 'filters.1.member.values' failed to satisfy constraint")
                .build(),
        )
    });
    let f = fleet(
        mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, [&rule]),
        mock_client!(aws_sdk_ec2, []),
    );
    let res = f.groups_tagged("swarm:cluster", "blue").await;
    assert!(
        matches!(res, Err(ref e @ PortError::Invalid { .. }) if e.is_final()),
        "{res:?}"
    );
    assert_eq!(rule.num_calls(), 1);
}

#[test]
fn lambdas_log_level_sets_the_filter_unless_rust_log_does() {
    use crate::runtime::log_filter;
    assert_eq!(log_filter(None, Some("DEBUG")), "debug");
    assert_eq!(log_filter(None, Some("FATAL")), "error");
    assert_eq!(log_filter(None, None), "info");
    assert_eq!(log_filter(Some("warn"), Some("DEBUG")), "warn");
    assert_eq!(log_filter(Some(" "), Some("trace")), "trace");
}

/// Logs of one debug and one info event (inside a span) under the settings the environment
/// `vars` gives, as the function would write them.
fn logged_under(vars: &[(&str, &str)]) -> String {
    use crate::runtime::{subscriber, LogSettings};
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let settings = LogSettings::from_env(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()));
    tracing::subscriber::with_default(subscriber(&settings, move || buf.clone()), || {
        let _span = tracing::info_span!("lifecycle", instance_id = "i-0abc").entered();
        tracing::debug!(step = "poll", "a debug line");
        tracing::info!(step = "join", outcome = "ok", "an info line");
    });
    let bytes = out.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn lambdas_log_level_debug_lets_debug_lines_through() {
    let info = logged_under(&[("AWS_LAMBDA_LOG_LEVEL", "INFO"), ("AWS_LAMBDA_LOG_FORMAT", "JSON")]);
    assert!(
        !info.contains("a debug line") && info.contains("an info line"),
        "{info}"
    );
    let debug = logged_under(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG"), ("AWS_LAMBDA_LOG_FORMAT", "JSON")]);
    let lines: Vec<serde_json::Value> = debug.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{debug}");
    assert_eq!(lines[0]["level"], "DEBUG");
    // The fields the dashboard's filters and the e2e tests read stay at the top level.
    assert_eq!(lines[1]["step"], "join");
    assert_eq!(lines[1]["outcome"], "ok");
    assert_eq!(lines[1]["span"]["instance_id"], "i-0abc");
    let warn = logged_under(&[("AWS_LAMBDA_LOG_LEVEL", "WARN")]);
    assert_eq!(warn, "");
    // RUST_LOG: a default level and levels by target; one that does not parse is info.
    let by_target = logged_under(&[("RUST_LOG", "warn,swarm_aws=debug"), ("AWS_LAMBDA_LOG_LEVEL", "ERROR")]);
    assert_eq!(by_target.lines().count(), 2, "{by_target}");
    let other = logged_under(&[("RUST_LOG", "warn,aws_smithy_runtime=debug")]);
    assert_eq!(other, "");
    let unparsable = logged_under(&[("RUST_LOG", "=[bad")]);
    assert!(
        !unparsable.contains("a debug line") && unparsable.contains("an info line"),
        "{unparsable}"
    );
}

#[test]
fn lambdas_log_format_text_writes_plain_lines() {
    let text = logged_under(&[("AWS_LAMBDA_LOG_LEVEL", "INFO"), ("AWS_LAMBDA_LOG_FORMAT", "Text")]);
    let line = text.lines().next().expect("one line");
    assert!(serde_json::from_str::<serde_json::Value>(line).is_err(), "{line}");
    assert!(
        line.contains("INFO") && line.contains("step=\"join\"") && line.contains("instance_id=\"i-0abc\""),
        "{line}"
    );
    // Unset: JSON, what the template configures.
    let default = logged_under(&[]);
    assert!(
        serde_json::from_str::<serde_json::Value>(default.lines().next().unwrap()).is_ok(),
        "{default}"
    );
}

#[tokio::test]
async fn an_action_event_is_put_with_its_source_and_a_refused_entry_is_an_error() {
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use swarm_core::announce::ActionEvent;

    let event = ActionEvent::drain_timed_out(
        "blue",
        "i-0123456789abcdef0",
        "worker",
        Duration::from_secs(8),
        "2 task(s)",
    );
    let taken = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| {
            let e = &r.entries()[0];
            r.entries().len() == 1
                && e.source() == Some("swarm-lifecycle")
                && e.detail_type() == Some("Swarm Drain Timed Out")
                && e.event_bus_name() == Some("default")
                && e.detail()
                    .is_some_and(|d| d.contains("\"instanceId\":\"i-0123456789abcdef0\""))
        })
        .then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(0)
                .entries(PutEventsResultEntry::builder().event_id("e-1").build())
                .build()
        });
    // The call succeeds; its one entry was refused (PutEvents answers per entry).
    let refused = |code: &'static str| {
        mock!(aws_sdk_eventbridge::Client::put_events).then_output(move || {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code(code)
                        .error_message("no")
                        .build(),
                )
                .build()
        })
    };
    let (source, throttled) = (
        refused("NotAuthorizedForSourceException"),
        refused("ThrottlingException"),
    );
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&taken, &source, &throttled]);
    let events = AwsEvents::new(client);
    events.announce("default", &event).await.unwrap();
    assert!(matches!(
        events.announce("default", &event).await,
        Err(PortError::Denied { .. })
    ));
    // Retryable per AWS, but not by the SDK (the call succeeded): transient, logged as lost.
    let e = events.announce("default", &event).await.unwrap_err();
    assert!(matches!(e, PortError::Aws { .. }) && !e.is_final(), "{e:?}");
}

/// The service names under a suffix: every type, the listing stopped once past them (Route 53
/// sorts by the reversed name), and a change batch that writes a multivalue set and its owner.
#[tokio::test]
async fn service_names_are_listed_under_their_suffix_and_changed_in_one_batch() {
    use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
    use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet};
    use swarm_core::plan::service_dns::{owner_value, ZoneChange, ZoneEntry};
    let set = |name: &str, kind: RrType, id: Option<&str>, value: &str| {
        ResourceRecordSet::builder()
            .name(name)
            .r#type(kind)
            .set_set_identifier(id.map(str::to_string))
            .ttl(60)
            .resource_records(ResourceRecord::builder().value(value).build().unwrap())
            .build()
            .unwrap()
    };
    let owner = owner_value("blue", "api");
    let list = mock!(aws_sdk_route53::Client::list_resource_record_sets)
        .match_requests(|r| r.start_record_name() == Some("apps.blue.internal."))
        .then_output(move || {
            ListResourceRecordSetsOutput::builder()
                .resource_record_sets(set("api.apps.blue.internal.", RrType::A, Some("i-1"), "10.0.1.1"))
                .resource_record_sets(set(
                    "api.apps.blue.internal.",
                    RrType::Txt,
                    None,
                    &owner_value("blue", "api"),
                ))
                .resource_record_sets(set("db.apps.blue.internal.", RrType::A, None, "192.0.2.1"))
                .resource_record_sets(set("managers.blue.internal.", RrType::A, Some("i-9"), "10.0.9.9"))
                .is_truncated(true)
                .next_record_name("x.blue.internal.")
                .max_items(100)
                .build()
                .unwrap()
        });
    let change = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .match_requests(|r| {
            let c = r.change_batch().unwrap().changes();
            c.len() == 2
                && c[0].resource_record_set().unwrap().multi_value_answer() == Some(true)
                && c[0].resource_record_set().unwrap().set_identifier() == Some("i-2")
                && c[1].resource_record_set().unwrap().r#type() == &RrType::Txt
                && c[1].resource_record_set().unwrap().multi_value_answer().is_none()
        })
        .then_output(|| {
            ChangeResourceRecordSetsOutput::builder()
                .change_info(
                    ChangeInfo::builder()
                        .id("/change/C3")
                        .status(ChangeStatus::Pending)
                        .submitted_at(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        });
    let dns = AwsDns::new(mock_client!(aws_sdk_route53, RuleMode::MatchAny, [&list, &change]));
    let got = dns.records_under("Z1", "apps.blue.internal").await.unwrap();
    assert_eq!(got.len(), 3, "stopped at the first name past the suffix: {got:?}");
    assert_eq!(list.num_calls(), 1, "not paged past the names under the suffix");
    assert_eq!(
        (got[1].kind.as_str(), got[1].values.clone()),
        ("TXT", vec![owner.clone()])
    );
    let a = |id: &str| ZoneEntry {
        name: "api.apps.blue.internal".into(),
        kind: "A".into(),
        set_identifier: Some(id.into()),
        values: vec!["10.0.1.2".into()],
        ttl: 60,
    };
    let txt = ZoneEntry {
        name: "api.apps.blue.internal".into(),
        kind: "TXT".into(),
        set_identifier: None,
        values: vec![owner],
        ttl: 60,
    };
    let id = dns
        .change_entries("Z1", &[ZoneChange::Upsert(a("i-2")), ZoneChange::Upsert(txt)])
        .await
        .unwrap();
    assert_eq!(id, "/change/C3");
}
