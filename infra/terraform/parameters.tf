# Generated from infra/template.yaml by scripts/terraform.py generate: edit the template, not this file.
locals {
  # Every parameter of the template, from its variable.
  parameters = {
    ClusterName              = var.cluster_name
    VpcId                    = var.vpc_id
    SubnetIds                = join(",", var.subnet_ids)
    PrivateRouteTableIds     = join(",", var.private_route_table_ids)
    ManagerCount             = var.manager_count
    WorkerCount              = var.worker_count
    WorkerMaxCount           = var.worker_max_count
    InstanceType             = var.instance_type
    SecondWorkerInstanceType = var.second_worker_instance_type
    WorkerOnDemandPercent    = var.worker_on_demand_percent
    SharedStorage            = var.shared_storage
    ImageId                  = var.image_id
    HostedZoneId             = var.hosted_zone_id
    ZoneName                 = var.zone_name
    ManagerRecordName        = var.manager_record_name
    ServiceRecordSuffix      = var.service_record_suffix
    DnsTtl                   = var.dns_ttl
    HoldExtra                = var.hold_extra
    TerminateHookTimeout     = var.terminate_hook_timeout
    AgentWait                = var.agent_wait
    JoinBudget               = var.join_budget
    LaunchHookTimeout        = var.launch_hook_timeout
    DrainTimeout             = var.drain_timeout
    BlockedDrain             = var.blocked_drain
    ReconcileGrace           = var.reconcile_grace
    ReconcileSchedule        = var.reconcile_schedule
    ScheduledChangeLead      = var.scheduled_change_lead
    ArtifactBucket           = var.artifact_bucket
    ArtifactPrefix           = var.artifact_prefix
    Architecture             = var.architecture
    ParameterPrefix          = var.parameter_prefix
    EcsClusterArn            = var.ecs_cluster_arn
    RebalanceAction          = var.rebalance_action
    DryRun                   = var.dry_run
    AppPortFrom              = var.app_port_from
    AppPortTo                = var.app_port_to
    LogLevel                 = var.log_level
    ReserveConcurrency       = var.reserve_concurrency
    LaunchConcurrency        = var.launch_concurrency
    TerminateConcurrency     = var.terminate_concurrency
    AppIngressCidr           = var.app_ingress_cidr
    AlarmEmail               = var.alarm_email
    ActionEventBus           = var.action_event_bus
    ActionEventsToAlarms     = join(",", var.action_events_to_alarms)
  }
}
