terraform {
  # check blocks (main.tf) need Terraform 1.5; tested with 1.11.
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
  }
}
