variable "name" {
  description = "Name prefix for the resources of this deployment, e.g. renkei-prod."
  type        = string
}

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC. Subnets are /24s carved from it (needs at least a /16)."
  type        = string
}

variable "availability_zone_ids" {
  description = "Availability zone IDs (not names) to place one subnet of each tier in, e.g. [\"apne1-az1\", \"apne1-az2\", \"apne1-az4\"]."
  type        = list(string)

  validation {
    condition     = length(var.availability_zone_ids) >= 2 && length(var.availability_zone_ids) == length(distinct(var.availability_zone_ids))
    error_message = "Give at least two distinct availability zone IDs."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper, not AZ-fault tolerant) instead of one per AZ."
  type        = bool
}

variable "logs_kms_key_arn" {
  description = "ARN of the KMS key that encrypts the VPC flow log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow log group, in days."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
