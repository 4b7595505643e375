variable "name" {
  description = "Name prefix for the resources of this deployment, e.g. renkei-prod."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
