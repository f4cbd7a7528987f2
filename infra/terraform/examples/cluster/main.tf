# A cluster and a Spot batch worker group. terraform init && terraform apply, after
# `make package` (the zips) and with AWS credentials; fill in the network.

provider "aws" {
  region = "eu-west-1"
}

module "swarm" {
  source          = "../.."
  stack_name      = "swarm"
  package_dir     = "/var/cache/swarm-lifecycle/target/lambda"
  artifact_bucket = "my-artefacts"
  cluster_name    = "prod"
  vpc_id          = "vpc-0123456789abcdef0"
  subnet_ids      = ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb", "subnet-0cccccccccccccccc"]
  alarm_email     = "ops@example.com"
  shared_storage  = "efs"
}

module "batch" {
  source                  = "../../worker-group"
  stack_name              = "swarm-batch"
  cluster_stack           = "swarm"
  group_name              = "batch"
  instance_types          = ["m6i.large", "m6a.large", "m5.large"]
  on_demand_base_capacity = 1
  on_demand_percent       = 0
  max_size                = 20
  desired_capacity        = 3
  node_labels             = "tier=batch"
  depends_on              = [module.swarm]
}

output "manager_record" {
  value = module.swarm.outputs["ManagerRecordName"]
}
