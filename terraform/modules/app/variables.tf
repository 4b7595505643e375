variable "name" {
  description = "Name prefix for the resources of this deployment, e.g. renkei-prod."
  type        = string
}

variable "environment" {
  description = "Deployment environment name, reported as deployment.environment in telemetry."
  type        = string
}

variable "vpc_id" {
  description = "ID of the VPC."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets for the internet-facing ALB."
  type        = list(string)
}

variable "app_subnet_ids" {
  description = "Private subnets for the ECS tasks."
  type        = list(string)
}

variable "db_security_group_id" {
  description = "Security group of the database; the tasks may open PostgreSQL connections to it."
  type        = string
}

variable "cache_security_group_id" {
  description = "Security group of the Redis replication group; the tasks may open Redis connections to it."
  type        = string
}

variable "app_port" {
  description = "TCP port gunicorn listens on in the web container."
  type        = number
  default     = 8000
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener; must cover the base domain and *.<base domain> (tenant subdomains)."
  type        = string
}

variable "image_tag" {
  description = "Tag of the Renkei image in this module's ECR repository to run (immutable tags: use the git commit)."
  type        = string
}

variable "container_image" {
  description = "Full image reference to run instead of <ECR repository>:<image_tag> (leave null to use ECR)."
  type        = string
  default     = null
}

variable "cpu_architecture" {
  description = "CPU architecture of the image and the Fargate tasks: X86_64 or ARM64."
  type        = string
  default     = "X86_64"
}

variable "base_domain" {
  description = "Base domain; tenants are served at <municipality code>.<base domain> (RENKEI_BASE_DOMAIN)."
  type        = string
}

variable "allowed_hosts" {
  description = "Comma-separated RENKEI_ALLOWED_HOSTS."
  type        = string
}

variable "web" {
  description = "Web service sizing: task cpu units, memory MiB, gunicorn workers, desired/min/max task count."
  type = object({
    cpu           = number
    memory        = number
    workers       = number
    desired_count = number
    min_count     = number
    max_count     = number
  })
}

variable "worker" {
  description = "Celery worker service sizing: task cpu units, memory MiB, worker concurrency, desired/min/max task count."
  type = object({
    cpu           = number
    memory        = number
    concurrency   = number
    desired_count = number
    min_count     = number
    max_count     = number
  })
}

variable "data_bucket_name" {
  description = "S3 bucket for raw imports and exports (RENKEI_S3_BUCKET)."
  type        = string
}

variable "data_bucket_arn" {
  description = "ARN of the data bucket."
  type        = string
}

variable "data_kms_key_arn" {
  description = "KMS key of the data bucket (RENKEI_S3_KMS_KEY_ID)."
  type        = string
}

variable "log_bucket_name" {
  description = "Bucket receiving the ALB access logs (prefix alb/)."
  type        = string
}

variable "secret_arns" {
  description = "Secrets Manager ARN per secret environment variable (DJANGO_SECRET_KEY, RENKEI_MASTER_KEY, RENKEI_SERVICE_TOKEN_KEY, DATABASE_URL, CELERY_BROKER_URL)."
  type        = map(string)
}

variable "secrets_kms_key_arn" {
  description = "KMS key encrypting those secrets."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key for the CloudWatch Logs log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the application log groups, in days."
  type        = number
}

variable "otel_collector_image" {
  description = "AWS Distro for OpenTelemetry collector image run as a sidecar (OTLP in, X-Ray and CloudWatch out)."
  type        = string
}

variable "enable_execute_command" {
  description = "Allow ECS Exec into running tasks (sessions are encrypted and logged). Off by default: the tasks hold pupil data."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
