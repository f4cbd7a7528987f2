# Generated from infra/worker-group.yaml by scripts/terraform.py generate: edit the template, not this file.

variable "cluster_stack" {
  type        = string
  description = "The stack name of the cluster (infra/template.yaml), whose exports this group uses."
  validation {
    condition     = can(regex("^(?:^[A-Za-z][A-Za-z0-9-]{0,127}$)$", var.cluster_stack))
    error_message = "ClusterStack must match ^[A-Za-z][A-Za-z0-9-]{0,127}$."
  }
}

variable "group_name" {
  type        = string
  description = "The group's short name (lowercase letters, digits, -), e.g. batch, gpu, memory."
  validation {
    condition     = can(regex("^(?:^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$)$", var.group_name))
    error_message = "GroupName must match ^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$."
  }
}

variable "instance_types" {
  type        = list(string)
  default     = ["t3.medium"]
  description = "One to four instance types (e.g. \"m6i.large,m5.large,m6a.large\"); with Spot (OnDemandPercent below 100) Auto Scaling picks among them (price-capacity-optimized)."
}

variable "on_demand_base_capacity" {
  type        = number
  default     = 0
  description = "The first instances of the group that are always On-Demand."
  validation {
    condition     = var.on_demand_base_capacity >= 0
    error_message = "OnDemandBaseCapacity must be at least 0."
  }
}

variable "on_demand_percent" {
  type        = number
  default     = 100
  description = "Percent of the group above its base that is On-Demand; the rest is Spot, with Capacity Rebalancing. 100: no Spot."
  validation {
    condition     = var.on_demand_percent >= 0 && var.on_demand_percent <= 100
    error_message = "OnDemandPercent must be at least 0 and at most 100."
  }
}

variable "min_size" {
  type        = number
  default     = 0
  description = "The template's MinSize parameter."
  validation {
    condition     = var.min_size >= 0
    error_message = "MinSize must be at least 0."
  }
}

variable "max_size" {
  type        = number
  default     = 10
  description = "The template's MaxSize parameter."
  validation {
    condition     = var.max_size >= 0
    error_message = "MaxSize must be at least 0."
  }
}

variable "desired_capacity" {
  type        = number
  default     = 1
  description = "The template's DesiredCapacity parameter."
  validation {
    condition     = var.desired_capacity >= 0
    error_message = "DesiredCapacity must be at least 0."
  }
}

variable "subnet_ids" {
  type        = list(string)
  default     = []
  description = "Subnets of the group; empty uses the cluster's."
}

variable "image_id" {
  type        = string
  default     = ""
  description = "An AMI for the group; empty uses the cluster's (its ImageId)."
  validation {
    condition     = can(regex("^(?:^(ami-[0-9a-f]{8,17})?$)$", var.image_id))
    error_message = "ImageId must match ^(ami-[0-9a-f]{8,17})?$."
  }
}

variable "node_labels" {
  type        = string
  default     = ""
  description = "The group's own node labels, e.g. \"tier=batch,disk=ssd\" (placement constraints use node.labels.tier)."
  validation {
    condition     = length(var.node_labels) <= 256
    error_message = "NodeLabels must be at most 256 characters."
  }
}

variable "extra_user_data" {
  type        = string
  default     = ""
  description = "Shell commands run at boot after Docker and the SSM agent start (e.g. a GPU runtime)."
}
