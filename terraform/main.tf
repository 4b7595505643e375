# Renkei on AWS: composition of the modules. No provider configuration here; the
# caller (environments/<env>/main.tf) configures the AWS provider for var.region.
#
#   network  VPC, public subnets (ALB, NAT only), private app/db/cache subnets, flow logs
#   logs     KMS key for every CloudWatch Logs group
#   storage  S3 data bucket (SSE-KMS, bucket keys, versioning, lifecycle) and log bucket
#   database RDS PostgreSQL 16 (Multi-AZ, KMS, TLS only, IAM auth, PI, enhanced monitoring)
#   secrets  Secrets Manager secrets the tasks read (KMS)
#   cache    ElastiCache Redis replication group, the Celery broker (TLS, AUTH, Multi-AZ)
#   app      ECR, ECS Fargate (web, worker, beat, migrate) with ADOT sidecar, ALB, WAF

locals {
  name = "${var.name}-${var.environment}"

  # Zone IDs name the same physical zone in every account (zone names do not).
  default_zone_ids = {
    "ap-northeast-1" = ["apne1-az1", "apne1-az2", "apne1-az4"]
    "ap-northeast-3" = ["apne3-az1", "apne3-az2", "apne3-az3"]
  }
  availability_zone_ids = coalesce(var.availability_zone_ids, local.default_zone_ids[var.region])

  tags = merge(var.tags, {
    Application = "renkei"
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}

data "aws_region" "current" {}

# The provider must point at the region the variables describe (and so stay in Japan).
check "provider_region" {
  assert {
    condition     = data.aws_region.current.name == var.region
    error_message = "The AWS provider is configured for ${data.aws_region.current.name}, but var.region is ${var.region}."
  }
}

module "logs" {
  source = "./modules/logs"

  name = local.name
  tags = local.tags
}

module "network" {
  source = "./modules/network"

  name                  = local.name
  vpc_cidr              = var.vpc_cidr
  availability_zone_ids = local.availability_zone_ids
  single_nat_gateway    = var.single_nat_gateway
  logs_kms_key_arn      = module.logs.kms_key_arn
  log_retention_days    = var.log_retention_days
  tags                  = local.tags
}

module "storage" {
  source = "./modules/storage"

  name                        = local.name
  raw_imports_transition_days = var.raw_imports_transition_days
  raw_imports_expiration_days = var.raw_imports_expiration_days
  tags                        = local.tags
}

module "database" {
  source = "./modules/database"

  name                     = local.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.db_subnet_ids
  client_security_group_id = module.app.app_security_group_id
  engine_version           = var.db_engine_version
  instance_class           = var.db_instance_class
  allocated_storage        = var.db_allocated_storage
  max_allocated_storage    = var.db_max_allocated_storage
  backup_retention_period  = var.db_backup_retention_days
  logs_kms_key_arn         = module.logs.kms_key_arn
  log_retention_days       = var.log_retention_days
  tags                     = local.tags
}

module "secrets" {
  source = "./modules/secrets"

  name       = local.name
  redis_host = module.cache.primary_endpoint_address
  redis_port = module.cache.port
  tags       = local.tags
}

module "cache" {
  source = "./modules/cache"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.cache_subnet_ids
  client_security_group_id   = module.app.app_security_group_id
  node_type                  = var.cache_node_type
  auth_token                 = module.secrets.redis_auth_token
  auth_token_update_strategy = var.redis_auth_token_update_strategy
  logs_kms_key_arn           = module.logs.kms_key_arn
  log_retention_days         = var.log_retention_days
  tags                       = local.tags
}

module "app" {
  source = "./modules/app"

  name        = local.name
  environment = var.environment

  vpc_id                  = module.network.vpc_id
  public_subnet_ids       = module.network.public_subnet_ids
  app_subnet_ids          = module.network.app_subnet_ids
  db_security_group_id    = module.database.security_group_id
  cache_security_group_id = module.cache.security_group_id

  certificate_arn = var.certificate_arn
  base_domain     = var.base_domain
  # 127.0.0.1: the container health check calls /healthz on the loopback address.
  allowed_hosts = ".${var.base_domain},127.0.0.1"

  image_tag            = var.image_tag
  container_image      = var.container_image
  cpu_architecture     = var.cpu_architecture
  otel_collector_image = var.otel_collector_image
  web                  = var.web
  worker               = var.worker

  data_bucket_name = module.storage.data_bucket_name
  data_bucket_arn  = module.storage.data_bucket_arn
  data_kms_key_arn = module.storage.data_kms_key_arn
  log_bucket_name  = module.storage.log_bucket_name

  secret_arns         = module.secrets.secret_arns
  secrets_kms_key_arn = module.secrets.kms_key_arn

  logs_kms_key_arn       = module.logs.kms_key_arn
  log_retention_days     = var.log_retention_days
  enable_execute_command = var.enable_execute_command

  tags = local.tags
}
