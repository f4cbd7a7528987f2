# Generated from infra/worker-group.yaml by scripts/terraform.py generate: edit the template, not this file.
locals {
  # Every parameter of the template, from its variable.
  parameters = {
    ClusterStack         = var.cluster_stack
    GroupName            = var.group_name
    InstanceTypes        = join(",", var.instance_types)
    OnDemandBaseCapacity = var.on_demand_base_capacity
    OnDemandPercent      = var.on_demand_percent
    MinSize              = var.min_size
    MaxSize              = var.max_size
    DesiredCapacity      = var.desired_capacity
    SubnetIds            = join(",", var.subnet_ids)
    ImageId              = var.image_id
    NodeLabels           = var.node_labels
    ExtraUserData        = var.extra_user_data
  }
}
