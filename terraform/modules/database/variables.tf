variable "name" {
  description = "Name prefix for the resources of this deployment; also the RDS instance identifier."
  type        = string
}

variable "subnet_ids" {
  description = "Isolated private subnets (at least two AZs) for the DB subnet group."
  type        = list(string)
}

variable "vpc_id" {
  description = "ID of the VPC."
  type        = string
}

variable "client_security_group_id" {
  description = "Security group of the application tasks, the only clients allowed to connect."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL version. A major version (\"16\") lets RDS pick and auto-upgrade the minor."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^16(\\.[0-9]+)?$", var.engine_version))
    error_message = "Renkei targets PostgreSQL 16 (\"16\" or \"16.x\")."
  }
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "allocated_storage" {
  description = "Initial storage in GiB (gp3)."
  type        = number
}

variable "max_allocated_storage" {
  description = "Upper bound in GiB for storage autoscaling."
  type        = number
}

variable "database_name" {
  description = "Name of the database created on the instance."
  type        = string
  default     = "renkei"
}

variable "master_username" {
  description = "Master (administrator) user name. Its password is generated, stored and rotated by RDS in Secrets Manager."
  type        = string
  default     = "renkei_admin"
}

variable "backup_retention_period" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number

  validation {
    condition     = var.backup_retention_period >= 7 && var.backup_retention_period <= 35
    error_message = "Keep between 7 and 35 days of backups."
  }
}

variable "backup_window" {
  description = "Daily backup window in UTC (default 17:00-18:00 UTC = 02:00-03:00 JST)."
  type        = string
  default     = "17:00-18:00"
}

variable "maintenance_window" {
  description = "Weekly maintenance window in UTC (default Sunday 03:00-04:00 JST)."
  type        = string
  default     = "sat:18:00-sat:19:00"
}

variable "monitoring_interval" {
  description = "Enhanced monitoring interval in seconds (1, 5, 10, 15, 30 or 60)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 5, 10, 15, 30, 60], var.monitoring_interval)
    error_message = "Enhanced monitoring needs one of 1, 5, 10, 15, 30, 60."
  }
}

variable "logs_kms_key_arn" {
  description = "ARN of the KMS key for the instance's CloudWatch Logs log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the exported PostgreSQL logs, in days."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
