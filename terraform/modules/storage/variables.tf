variable "name" {
  description = "Name prefix; bucket names are <name>-data-<account id> and <name>-logs-<account id>."
  type        = string
}

variable "raw_imports_transition_days" {
  description = "Days after which objects under raw-imports/ move to S3 Standard-IA."
  type        = number
  default     = 30

  validation {
    condition     = var.raw_imports_transition_days >= 30
    error_message = "S3 Standard-IA needs objects to be at least 30 days old."
  }
}

variable "raw_imports_expiration_days" {
  description = "Days after which raw import files (the archived CSV/JSON a connector read) are deleted. The loaded, pseudonymized data stays in PostgreSQL."
  type        = number
  default     = 400
}

variable "noncurrent_version_expiration_days" {
  description = "Days a deleted or overwritten object version is kept (undo window) before it is purged."
  type        = number
  default     = 30
}

variable "access_log_expiration_days" {
  description = "Days S3 server access logs and ALB access logs are kept in the log bucket."
  type        = number
  default     = 400
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
