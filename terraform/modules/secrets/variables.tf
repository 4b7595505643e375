variable "name" {
  description = "Name prefix; secrets are named <name>/<SETTING>."
  type        = string
}

variable "redis_host" {
  description = "Primary endpoint of the Redis replication group, used to build CELERY_BROKER_URL."
  type        = string
}

variable "redis_port" {
  description = "Port of the Redis replication group."
  type        = number
  default     = 6379
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can still be restored (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.recovery_window_in_days >= 7 && var.recovery_window_in_days <= 30
    error_message = "Secrets Manager accepts a recovery window of 7 to 30 days."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
