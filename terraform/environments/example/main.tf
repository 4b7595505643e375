# Example environment: copy this directory to environments/<env>/, fill in
# terraform.tfvars (from terraform.tfvars.example) and the backend, then
#
#   terraform init
#   terraform plan -out plan.tfplan
#   terraform apply plan.tfplan

terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
  }

  # The state holds generated secrets (Django key, Redis token): keep it in an
  # encrypted, versioned, access-restricted bucket in Japan. Uncomment and fill in:
  #
  # backend "s3" {
  #   bucket       = "<state bucket>"
  #   key          = "renkei/<env>/terraform.tfstate"
  #   region       = "ap-northeast-1"
  #   encrypt      = true
  #   kms_key_id   = "<KMS key ARN>"
  #   use_lockfile = true
  # }
}

variable "region" {
  description = "AWS region of this environment (Japan only: ap-northeast-1 or ap-northeast-3)."
  type        = string
  default     = "ap-northeast-1"
}

variable "environment" {
  description = "Environment name, e.g. prod."
  type        = string
}

variable "base_domain" {
  description = "Base domain; municipalities are served at <code>.<base domain>."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate covering <base domain> and *.<base domain>, in var.region."
  type        = string
}

variable "image_tag" {
  description = "Renkei image tag to deploy (git commit SHA)."
  type        = string
}

variable "redis_auth_token_update_strategy" {
  description = "ROTATE normally; SET for the apply that retires an old Redis AUTH token (infra/README.md)."
  type        = string
  default     = "ROTATE"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Application = "renkei"
      Environment = var.environment
    }
  }
}

module "renkei" {
  source = "../.."

  region          = var.region
  environment     = var.environment
  base_domain     = var.base_domain
  certificate_arn = var.certificate_arn
  image_tag       = var.image_tag
  tags            = var.tags

  redis_auth_token_update_strategy = var.redis_auth_token_update_strategy
}

output "alb_dns_name" {
  description = "Alias <base domain> and *.<base domain> to this name."
  value       = module.renkei.alb_dns_name
}

output "ecr_repository_url" {
  description = "Push the image here."
  value       = module.renkei.ecr_repository_url
}

output "secret_arns" {
  description = "Secrets to fill in before the first deploy (RENKEI_MASTER_KEY, RENKEI_SERVICE_TOKEN_KEY, DATABASE_URL)."
  value       = module.renkei.secret_arns
}

output "ecs_cluster_name" {
  description = "ECS cluster name."
  value       = module.renkei.ecs_cluster_name
}

output "app_subnet_ids" {
  description = "Subnets for one-off tasks."
  value       = module.renkei.app_subnet_ids
}

output "app_security_group_id" {
  description = "Security group for one-off tasks."
  value       = module.renkei.app_security_group_id
}

output "db_address" {
  description = "PostgreSQL host name."
  value       = module.renkei.db_address
}
