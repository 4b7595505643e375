# Inputs of the Renkei AWS deployment. Defaults are production-safe; sizes are a
# starting point for a prefecture-scale deployment (tens of municipalities).

variable "region" {
  description = "AWS region. Pupil data stays in Japan: Tokyo (ap-northeast-1) or Osaka (ap-northeast-3). Must match the provider's region."
  type        = string
  default     = "ap-northeast-1"

  validation {
    condition     = contains(["ap-northeast-1", "ap-northeast-3"], var.region)
    error_message = "Renkei keeps pupil data in Japan: use ap-northeast-1 (Tokyo) or ap-northeast-3 (Osaka)."
  }
}

variable "name" {
  description = "Short name of the system, used as the first part of every resource name."
  type        = string
  default     = "renkei"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}$", var.name))
    error_message = "Use 2-15 lowercase letters, digits or hyphens, starting with a letter (resource name limits)."
  }
}

variable "environment" {
  description = "Environment name (prod, staging, ...), the second part of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "Use 2-10 lowercase letters or digits, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource (cost centre, owner, data classification, ...)."
  type        = map(string)
  default     = {}
}

# --- Network -------------------------------------------------------------------

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC (a /16: subnets are /24s)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "Give a valid IPv4 CIDR of /16 or larger."
  }
}

variable "availability_zone_ids" {
  description = "Availability zone IDs for the subnets (2 or 3). null: three zones of var.region (Tokyo apne1-az1/az2/az4, Osaka apne3-az1/az2/az3)."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zone_ids == null ? true : (length(var.availability_zone_ids) >= 2 && length(var.availability_zone_ids) <= 3)
    error_message = "Use 2 or 3 availability zones (the Multi-AZ database and cache need at least 2)."
  }
}

variable "single_nat_gateway" {
  description = "Share one NAT gateway between all AZs (cheaper; outbound traffic stops if that AZ fails)."
  type        = bool
  default     = false
}

# --- Domain and TLS ---------------------------------------------------------------

variable "base_domain" {
  description = "Base domain; each municipality is served at <code>.<base domain> (RENKEI_BASE_DOMAIN)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9-]+\\.)+[a-z]{2,}$", var.base_domain))
    error_message = "Give a lowercase DNS name such as renkei.example.jp."
  }
}

variable "certificate_arn" {
  description = "ARN of an ACM certificate in the same region covering <base domain> and *.<base domain>."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:ap-northeast-[13]:[0-9]{12}:certificate/", var.certificate_arn))
    error_message = "Give the ARN of an ACM certificate in ap-northeast-1 or ap-northeast-3."
  }
}

# --- Application ------------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the Renkei image in the deployment's ECR repository (immutable: use the git commit SHA)."
  type        = string

  validation {
    condition     = var.image_tag != "latest" && can(regex("^[A-Za-z0-9_.-]{1,128}$", var.image_tag))
    error_message = "Give an explicit image tag (not latest)."
  }
}

variable "container_image" {
  description = "Full image reference to run instead of <ECR repository>:<image_tag>; null uses ECR."
  type        = string
  default     = null
}

variable "cpu_architecture" {
  description = "CPU architecture of the image and Fargate tasks (X86_64 or ARM64)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "Use X86_64 or ARM64."
  }
}

variable "web" {
  description = "Web service: task cpu units and memory MiB, gunicorn worker processes, desired/min/max tasks."
  type = object({
    cpu           = number
    memory        = number
    workers       = number
    desired_count = number
    min_count     = number
    max_count     = number
  })
  default = {
    cpu           = 1024
    memory        = 2048
    workers       = 3
    desired_count = 2
    min_count     = 2
    max_count     = 8
  }

  validation {
    condition     = var.web.min_count >= 2 && var.web.min_count <= var.web.desired_count && var.web.desired_count <= var.web.max_count
    error_message = "Run at least two web tasks (one per AZ) and keep min <= desired <= max."
  }
}

variable "worker" {
  description = "Celery worker service: task cpu units and memory MiB, concurrency per task, desired/min/max tasks."
  type = object({
    cpu           = number
    memory        = number
    concurrency   = number
    desired_count = number
    min_count     = number
    max_count     = number
  })
  default = {
    cpu           = 1024
    memory        = 4096
    concurrency   = 2
    desired_count = 2
    min_count     = 1
    max_count     = 10
  }

  validation {
    condition     = var.worker.min_count >= 1 && var.worker.min_count <= var.worker.desired_count && var.worker.desired_count <= var.worker.max_count
    error_message = "Keep 1 <= min <= desired <= max."
  }
}

variable "otel_collector_image" {
  description = "AWS Distro for OpenTelemetry collector image for the sidecar (pinned version)."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.45.0"

  validation {
    condition     = !endswith(var.otel_collector_image, ":latest") && can(regex(":[^/]+$", var.otel_collector_image))
    error_message = "Pin the collector image to a version tag."
  }
}

variable "enable_execute_command" {
  description = "Allow ECS Exec into running tasks (encrypted, logged). Keep off unless debugging: tasks hold pupil data."
  type        = bool
  default     = false
}

# --- Database ---------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class for PostgreSQL."
  type        = string
  default     = "db.m7g.large"
}

variable "db_engine_version" {
  description = "PostgreSQL engine version: \"16\" (RDS picks and auto-upgrades the minor) or an exact 16.x."
  type        = string
  default     = "16"
}

variable "db_allocated_storage" {
  description = "Initial database storage in GiB."
  type        = number
  default     = 100
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling limit in GiB."
  type        = number
  default     = 1000
}

variable "db_backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "Keep 7 to 35 days of backups."
  }
}

# --- Cache ------------------------------------------------------------------------

variable "cache_node_type" {
  description = "ElastiCache node type for the Redis broker."
  type        = string
  default     = "cache.m7g.large"
}

variable "redis_auth_token_update_strategy" {
  description = "ROTATE while a new Redis AUTH token is rolled out (old and new accepted), then SET to retire the old one (infra/README.md, Secrets)."
  type        = string
  default     = "ROTATE"

  validation {
    condition     = contains(["ROTATE", "SET"], var.redis_auth_token_update_strategy)
    error_message = "Use ROTATE or SET."
  }
}

# --- Storage ----------------------------------------------------------------------

variable "raw_imports_transition_days" {
  description = "Days before raw import files move to S3 Standard-IA (at least 30)."
  type        = number
  default     = 30
}

variable "raw_imports_expiration_days" {
  description = "Days before raw import files are deleted (loaded data stays in PostgreSQL)."
  type        = number
  default     = 400

  validation {
    condition     = var.raw_imports_expiration_days >= 31
    error_message = "Keep raw imports for more than 30 days (after the transition to Standard-IA)."
  }
}

# --- Logs -------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Retention of every CloudWatch Logs group, in days (at least a year)."
  type        = number
  default     = 400

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "Use a CloudWatch Logs retention of at least 365 days (365, 400, 545, 731, 1096, 1827, ...)."
  }
}
