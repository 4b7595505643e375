variable "name" {
  description = "Name prefix; also the replication group id."
  type        = string
}

variable "subnet_ids" {
  description = "Isolated private subnets (at least two AZs) for the cache subnet group."
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

variable "node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "num_cache_clusters" {
  description = "Nodes in the replication group: one primary plus replicas in other AZs (at least 2 for automatic failover)."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 2
    error_message = "Automatic failover and Multi-AZ need at least two nodes."
  }
}

variable "engine_version" {
  description = "Redis OSS engine version."
  type        = string
  default     = "7.1"
}

variable "auth_token" {
  description = "Redis AUTH token (from the secrets module, stored in Secrets Manager)."
  type        = string
  sensitive   = true
}

variable "auth_token_update_strategy" {
  description = "How a changed AUTH token is applied: ROTATE (old and new both accepted) or SET (only the new one)."
  type        = string
  default     = "ROTATE"

  validation {
    condition     = contains(["ROTATE", "SET"], var.auth_token_update_strategy)
    error_message = "Use ROTATE or SET."
  }
}

variable "snapshot_retention_limit" {
  description = "Days of automatic snapshots kept (the broker holds only transient task messages)."
  type        = number
  default     = 1
}

variable "logs_kms_key_arn" {
  description = "ARN of the KMS key for the slow-log and engine-log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the Redis log groups, in days."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
