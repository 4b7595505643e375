output "alb_dns_name" {
  description = "DNS name of the load balancer: alias <base domain> and *.<base domain> to it."
  value       = module.app.alb_dns_name
}

output "alb_zone_id" {
  description = "Hosted zone id of the load balancer, for Route 53 alias records."
  value       = module.app.alb_zone_id
}

output "ecr_repository_url" {
  description = "Where to push the Renkei image (tag = git commit SHA)."
  value       = module.app.ecr_repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster running web, worker and beat."
  value       = module.app.cluster_name
}

output "ecs_service_names" {
  description = "ECS service names (web, worker, beat)."
  value       = module.app.service_names
}

output "ecs_task_definition_families" {
  description = "Task definition family per role; run migrate (and other one-off commands) with aws ecs run-task."
  value       = module.app.task_definition_families
}

output "app_subnet_ids" {
  description = "Subnets for one-off tasks (aws ecs run-task --network-configuration)."
  value       = module.network.app_subnet_ids
}

output "app_security_group_id" {
  description = "Security group for one-off tasks."
  value       = module.app.app_security_group_id
}

output "db_address" {
  description = "Host name of the PostgreSQL endpoint (for DATABASE_URL)."
  value       = module.database.address
}

output "db_master_user_secret_arn" {
  description = "Secret with the RDS master credentials (managed and rotated by RDS); use only for administration."
  value       = module.database.master_user_secret_arn
}

output "data_bucket_name" {
  description = "S3 bucket for raw imports and exports (RENKEI_S3_BUCKET)."
  value       = module.storage.data_bucket_name
}

output "data_kms_key_arn" {
  description = "KMS key of the data bucket (RENKEI_S3_KMS_KEY_ID)."
  value       = module.storage.data_kms_key_arn
}

output "secret_arns" {
  description = "Secrets Manager ARN per secret setting; RENKEI_MASTER_KEY, RENKEI_SERVICE_TOKEN_KEY and DATABASE_URL must be given a value before the first deploy."
  value       = module.secrets.secret_arns
}

output "redis_primary_endpoint" {
  description = "Primary endpoint of the Redis broker."
  value       = module.cache.primary_endpoint_address
}
