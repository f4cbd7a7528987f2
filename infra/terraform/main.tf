# The swarm as a Terraform module: one CloudFormation stack of infra/template.yaml (the one
# source of the infrastructure), its template and the functions' zips uploaded to S3 first.
# variables.tf and parameters.tf are generated from the template (scripts/terraform.py).

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
  description = "The CloudFormation stack (and the prefix of its exports, for worker groups)."
}

variable "package_dir" {
  type        = string
  description = "Where `make package` left the zips: <CARGO_TARGET_DIR>/lambda (one <function>/bootstrap.zip each)."
}

locals {
  functions = ["lifecycle-hook", "ecs-state-change", "instance-notice", "scheduled-change", "reconcile"]
  # One release prefix per set of zips: new code is a new S3 key, which CloudFormation sees as a change.
  release = substr(sha256(join(",", [for f in local.functions : filemd5("${var.package_dir}/${f}/bootstrap.zip")])), 0, 12)
  prefix  = "${var.artifact_prefix}${local.release}/"
}

resource "aws_s3_object" "function" {
  for_each    = toset(local.functions)
  bucket      = var.artifact_bucket
  key         = "${local.prefix}${each.key}.zip"
  source      = "${var.package_dir}/${each.key}/bootstrap.zip"
  source_hash = filemd5("${var.package_dir}/${each.key}/bootstrap.zip")
}

# The template is over CloudFormation's 51,200-byte limit for a template body: it goes by URL.
resource "aws_s3_object" "template" {
  bucket      = var.artifact_bucket
  key         = "${local.prefix}template.yaml"
  source      = "${path.module}/../template.yaml"
  source_hash = filemd5("${path.module}/../template.yaml")
}

resource "aws_cloudformation_stack" "swarm" {
  name         = var.stack_name
  template_url = "https://${var.artifact_bucket}.s3.amazonaws.com/${aws_s3_object.template.key}"
  capabilities = ["CAPABILITY_IAM"]
  parameters   = merge(local.parameters, { ArtifactPrefix = local.prefix })
  depends_on   = [aws_s3_object.function]

  # The terminate hooks hold each leaving manager for the DNS TTL + HoldExtra: an update that
  # rolls the managers, or a delete, takes minutes per manager.
  timeouts {
    create = "60m"
    update = "120m"
    delete = "60m"
  }
}

output "outputs" {
  description = "Every output of the stack (infra/template.yaml's Outputs), by name."
  value       = aws_cloudformation_stack.swarm.outputs
}
