# One more worker group of a swarm: a CloudFormation stack of infra/worker-group.yaml against
# the cluster's stack (its exports). variables.tf and parameters.tf are generated from the
# template (scripts/terraform.py).

terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "stack_name" {
  type        = string
  description = "This group's CloudFormation stack."
}

resource "aws_cloudformation_stack" "group" {
  name          = var.stack_name
  template_body = file("${path.module}/../../worker-group.yaml")
  parameters    = local.parameters

  # Deleting the group retires every node through the terminate hook first.
  timeouts {
    delete = "60m"
  }
}

output "group" {
  description = "The group's Auto Scaling group."
  value       = aws_cloudformation_stack.group.outputs["Group"]
}
