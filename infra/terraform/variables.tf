# Generated from infra/template.yaml by scripts/terraform.py generate: edit the template, not this file.

variable "cluster_name" {
  type        = string
  default     = "swarm"
  description = "Swarm cluster name (tag swarm:cluster; letters, digits, - _)."
  validation {
    condition     = can(regex("^(?:^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$)$", var.cluster_name))
    error_message = "ClusterName must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$."
  }
}

variable "vpc_id" {
  type        = string
  description = "The template's VpcId parameter."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets in three availability zones."
}

variable "private_route_table_ids" {
  type        = list(string)
  default     = []
  description = "Route tables of SubnetIds. Given, the stack adds an S3 gateway endpoint to them (the instances install Docker with dnf, whose Amazon Linux repositories are served from S3). Empty: the subnets must already reach S3 (a NAT gateway or an existing endpoint)."
}

variable "manager_count" {
  type        = number
  default     = 3
  description = "Swarm managers (odd, for raft quorum), spread over the subnets."
  validation {
    condition     = contains([1, 3, 5, 7], var.manager_count)
    error_message = "ManagerCount must be one of 1, 3, 5, 7."
  }
}

variable "worker_count" {
  type        = number
  default     = 2
  description = "The template's WorkerCount parameter."
  validation {
    condition     = var.worker_count >= 0
    error_message = "WorkerCount must be at least 0."
  }
}

variable "worker_max_count" {
  type        = number
  default     = 20
  description = "The template's WorkerMaxCount parameter."
  validation {
    condition     = var.worker_max_count >= 0
    error_message = "WorkerMaxCount must be at least 0."
  }
}

variable "instance_type" {
  type        = string
  default     = "t3.medium"
  description = "The template's InstanceType parameter."
}

variable "second_worker_instance_type" {
  type        = string
  default     = "m6i.large"
  description = "The worker group's second instance type when it runs Spot (WorkerOnDemandPercent). More worker groups, of any types: infra/worker-group.yaml, one stack each."
}

variable "worker_on_demand_percent" {
  type        = number
  default     = 100
  description = "Percent of the worker group above its base that is On-Demand; the rest is Spot, over InstanceType and SecondWorkerInstanceType (price-capacity-optimized), with Capacity Rebalancing. 100 (the default): no Spot. A Spot worker is retired before its interruption (spot-notice)."
  validation {
    condition     = var.worker_on_demand_percent >= 0 && var.worker_on_demand_percent <= 100
    error_message = "WorkerOnDemandPercent must be at least 0 and at most 100."
  }
}

variable "shared_storage" {
  type        = string
  default     = "none"
  description = "efs: an EFS file system mounted at /cluster on every node (encrypted at rest and in transit, a mount target in each of the first three SubnetIds, NFS open from the nodes only), for services that keep state wherever they run. A node whose mount failed is not joined: its launch is abandoned with that reason. The file system is retained when the stack is deleted."
  validation {
    condition     = contains(["none", "efs"], var.shared_storage)
    error_message = "SharedStorage must be one of none, efs."
  }
}

variable "image_id" {
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
  description = "Amazon Linux 2023 for the instances. For Graviton instances set an arm64 AMI parameter (al2023-ami-kernel-default-arm64) and arm64 instance types (InstanceType, SecondWorkerInstanceType); Architecture only selects the functions' architecture."
}

variable "hosted_zone_id" {
  type        = string
  default     = ""
  description = "An existing Route 53 zone; empty creates a private zone ZoneName in the VPC."
  validation {
    condition     = can(regex("^(?:^(Z[A-Z0-9]{1,31})?$)$", var.hosted_zone_id))
    error_message = "HostedZoneId must match ^(Z[A-Z0-9]{1,31})?$."
  }
}

variable "zone_name" {
  type        = string
  default     = "swarm.internal"
  description = "The template's ZoneName parameter."
}

variable "manager_record_name" {
  type        = string
  default     = "managers.swarm.internal"
  description = "The manager record (one multivalue answer per manager); unique per cluster when stacks share a zone."
  validation {
    condition     = can(regex("^(?:^[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)+$)$", var.manager_record_name))
    error_message = "ManagerRecordName must match ^[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)+$."
  }
}

variable "service_record_suffix" {
  type        = string
  default     = ""
  description = "Service names: a service labelled swarm-lifecycle.dns-name=<name> under this suffix gets a multivalue A record of its nodes (and an owner TXT record) in the zone; a leaving node leaves every name before it drains, held for the TTL + extra. Empty: no service names."
  validation {
    condition     = can(regex("^(?:^$|^[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)+$)$", var.service_record_suffix))
    error_message = "ServiceRecordSuffix must match ^$|^[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)+$."
  }
}

variable "dns_ttl" {
  type        = number
  default     = 60
  description = "The template's DnsTtl parameter."
  validation {
    condition     = var.dns_ttl >= 5
    error_message = "DnsTtl must be at least 5."
  }
}

variable "hold_extra" {
  type        = number
  default     = 120
  description = "The template's HoldExtra parameter."
  validation {
    condition     = var.hold_extra >= 0
    error_message = "HoldExtra must be at least 0."
  }
}

variable "terminate_hook_timeout" {
  type        = number
  default     = 180
  description = "HeartbeatTimeout of the terminate hooks: the hold. Must equal DnsTtl + HoldExtra (the functions refuse to start when it is shorter)."
  validation {
    condition     = var.terminate_hook_timeout >= 30 && var.terminate_hook_timeout <= 7200
    error_message = "TerminateHookTimeout must be at least 30 and at most 7200."
  }
}

variable "agent_wait" {
  type        = number
  default     = 300
  description = "The template's AgentWait parameter."
}

variable "join_budget" {
  type        = number
  default     = 300
  description = "The template's JoinBudget parameter."
}

variable "launch_hook_timeout" {
  type        = number
  default     = 900
  description = "HeartbeatTimeout of the launch hooks; at least AgentWait + JoinBudget."
  validation {
    condition     = var.launch_hook_timeout >= 30 && var.launch_hook_timeout <= 7200
    error_message = "LaunchHookTimeout must be at least 30 and at most 7200."
  }
}

variable "drain_timeout" {
  type        = number
  default     = 300
  description = "Seconds a leaving node's tasks may take to move. A drain that outlasts its first command goes on across invocations (DrainCheckFunction), the lifecycle action kept alive by each check, so it may last until the hook's global timeout: 100 \u00d7 TerminateHookTimeout (48 h at most) less the 120 s removal and one heartbeat timeout (the functions refuse more: 17,700 s with the default 180 s hook)."
  validation {
    condition     = var.drain_timeout >= 0 && var.drain_timeout <= 172500
    error_message = "DrainTimeout must be at least 0 and at most 172500."
  }
}

variable "blocked_drain" {
  type        = string
  default     = "wait"
  description = "When a drain finds tasks of the leaving node's services that the swarm cannot place (docker's \"no suitable node\": a constraint only that node met, no room left), it says so at once (action event \"Swarm Drain Blocked\", metric DrainsBlocked). wait keeps draining until DrainTimeout in case capacity comes (a replacement launching); proceed lets the instance go now."
  validation {
    condition     = contains(["wait", "proceed"], var.blocked_drain)
    error_message = "BlockedDrain must be one of wait, proceed."
  }
}

variable "reconcile_grace" {
  type        = number
  default     = 300
  description = "The template's ReconcileGrace parameter."
}

variable "reconcile_schedule" {
  type        = string
  default     = "rate(5 minutes)"
  description = "The template's ReconcileSchedule parameter."
}

variable "scheduled_change_lead" {
  type        = number
  default     = 3600
  description = "Seconds before an EC2 scheduled change (instance retirement, system reboot or maintenance) that its node leaves the swarm: at once when AWS Health announces it later than that, else by the reconcile, so it must be several ReconcileSchedule periods."
  validation {
    condition     = var.scheduled_change_lead >= 900
    error_message = "ScheduledChangeLead must be at least 900."
  }
}

variable "artifact_bucket" {
  type        = string
  description = "S3 bucket holding the function zips (make deploy uploads them)."
}

variable "artifact_prefix" {
  type        = string
  default     = "swarm-lifecycle/"
  description = "The template's ArtifactPrefix parameter."
}

variable "architecture" {
  type        = string
  default     = "x86_64"
  description = "The template's Architecture parameter."
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "Architecture must be one of x86_64, arm64."
  }
}

variable "parameter_prefix" {
  type        = string
  default     = "/swarm"
  description = "The template's ParameterPrefix parameter."
  validation {
    condition     = can(regex("^(?:^/[A-Za-z0-9/_.-]*[A-Za-z0-9_.-]$)$", var.parameter_prefix))
    error_message = "ParameterPrefix must match ^/[A-Za-z0-9/_.-]*[A-Za-z0-9_.-]$."
  }
}

variable "ecs_cluster_arn" {
  type        = string
  default     = ""
  description = "ECS cluster whose container-instance changes rejoin/drain nodes (optional)."
}

variable "rebalance_action" {
  type        = string
  default     = "drain"
  description = "What an EC2 rebalance recommendation does to a worker's node: its tasks move now (drain), it takes no new tasks (cordon), or it is only logged and counted (ignore). A manager's is only logged and counted: the interruption notice retires it."
  validation {
    condition     = contains(["drain", "cordon", "ignore"], var.rebalance_action)
    error_message = "RebalanceAction must be one of drain, cordon, ignore."
  }
}

variable "dry_run" {
  type        = string
  default     = "false"
  description = "The template's DryRun parameter."
  validation {
    condition     = contains(["true", "false"], var.dry_run)
    error_message = "DryRun must be one of true, false."
  }
}

variable "app_port_from" {
  type        = number
  default     = 80
  description = "First application port published by swarm services (ingress)."
}

variable "app_port_to" {
  type        = number
  default     = 80
  description = "The template's AppPortTo parameter."
}

variable "log_level" {
  type        = string
  default     = "INFO"
  description = "The functions' application log level (Lambda's advanced logging controls set AWS_LAMBDA_LOG_LEVEL, which the functions honour); change it without new code."
  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "LogLevel must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "reserve_concurrency" {
  type        = string
  default     = "false"
  description = "Reserve concurrency for the functions (LaunchConcurrency + 2 \u00d7 TerminateConcurrency + 2 + 2 + 2 + 1 + 1). Lambda lets an account reserve only its unreserved concurrency minus 100, and new accounts start with a quota of 10 or 50, so the default reserves nothing and deploys anywhere; with a raised quota, \"true\" keeps other functions from starving these (see docs/deploy.md)."
  validation {
    condition     = contains(["true", "false"], var.reserve_concurrency)
    error_message = "ReserveConcurrency must be one of true, false."
  }
}

variable "launch_concurrency" {
  type        = number
  default     = 10
  description = "Reserved concurrency of the launch function when ReserveConcurrency is true."
  validation {
    condition     = var.launch_concurrency >= 1
    error_message = "LaunchConcurrency must be at least 1."
  }
}

variable "terminate_concurrency" {
  type        = number
  default     = 5
  description = "Reserved concurrency of the terminate function when ReserveConcurrency is true; otherwise how many terminations you expect the account to run at once. Past it, a running termination keeps the queued ones' actions alive and retires them after its own."
  validation {
    condition     = var.terminate_concurrency >= 1
    error_message = "TerminateConcurrency must be at least 1."
  }
}

variable "app_ingress_cidr" {
  type        = string
  default     = "10.0.0.0/8"
  description = "The template's AppIngressCidr parameter."
  validation {
    condition     = can(regex("^(?:^([0-9]{1,3}\\.){3}[0-9]{1,3}/[0-9]{1,2}$)$", var.app_ingress_cidr))
    error_message = "AppIngressCidr must match ^([0-9]{1,3}\\.){3}[0-9]{1,3}/[0-9]{1,2}$."
  }
}

variable "alarm_email" {
  type        = string
  default     = ""
  description = "The template's AlarmEmail parameter."
}

variable "action_event_bus" {
  type        = string
  default     = "default"
  description = "The EventBridge bus (a name) the functions publish their action events to (source swarm-lifecycle; docs/operate.md, \"Action events\")."
  validation {
    condition     = can(regex("^(?:^[/\\.\\-_A-Za-z0-9]{1,256}$)$", var.action_event_bus))
    error_message = "ActionEventBus must match ^[/\\.\\-_A-Za-z0-9]{1,256}$."
  }
}

variable "action_events_to_alarms" {
  type        = list(string)
  default     = []
  description = "Detail-types of action events forwarded to the alarm topic (e.g. \"Swarm Launch Abandoned,Swarm Drain Timed Out,Swarm Quorum At Risk\"); empty: none."
}
