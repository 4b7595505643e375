# Offline test of the whole composition: `terraform test` applies it against a mocked AWS
# provider (no credentials, no AWS calls). It proves that every expression evaluates
# (container definitions, collector config, policies, module wiring) and that the input
# validations refuse unsafe values. Run from terraform/ after `terraform init`;
# tests/ops/test_terraform.py does this in a scratch copy.

mock_provider "aws" {
  mock_resource "aws_lb" {
    defaults = {
      arn = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/renkei-test/0123456789abcdef"
    }
  }
  mock_resource "aws_lb_target_group" {
    defaults = {
      arn = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/renkei-test-web/0123456789abcdef"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/renkei-test"
    }
  }
  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:ap-northeast-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = {
      arn = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:renkei-test-AbCdEf"
    }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:ap-northeast-1:123456789012:log-group:renkei-test"
    }
  }
  mock_resource "aws_s3_bucket" {
    defaults = {
      arn = "arn:aws:s3:::renkei-test-data-123456789012"
    }
  }
  mock_resource "aws_wafv2_web_acl" {
    defaults = {
      arn = "arn:aws:wafv2:ap-northeast-1:123456789012:regional/webacl/renkei-test/00000000-0000-0000-0000-000000000000"
    }
  }
  mock_resource "aws_ecr_repository" {
    defaults = {
      arn            = "arn:aws:ecr:ap-northeast-1:123456789012:repository/renkei-test"
      repository_url = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/renkei-test"
    }
  }
  mock_resource "aws_ecs_cluster" {
    defaults = {
      arn = "arn:aws:ecs:ap-northeast-1:123456789012:cluster/renkei-test"
    }
  }
  mock_resource "aws_ecs_task_definition" {
    defaults = {
      arn = "arn:aws:ecs:ap-northeast-1:123456789012:task-definition/renkei-test-web:1"
    }
  }
  mock_resource "aws_db_instance" {
    defaults = {
      arn                = "arn:aws:rds:ap-northeast-1:123456789012:db:renkei-test"
      master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:rds-AbCdEf", kms_key_id = "k", secret_status = "active" }]
    }
  }
  mock_data "aws_region" {
    defaults = { name = "ap-northeast-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_data "aws_elb_service_account" {
    defaults = { arn = "arn:aws:iam::582318560864:root" }
  }
  mock_data "aws_secretsmanager_secret_version" {
    defaults = { secret_string = "tokentokentokentoken" }
  }
}

variables {
  environment     = "test"
  base_domain     = "renkei.example.jp"
  certificate_arn = "arn:aws:acm:ap-northeast-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  image_tag       = "0123456789abcdef"
}

run "applies_with_defaults" {
  command = apply

  assert {
    condition     = output.data_bucket_name == "renkei-test-data-123456789012"
    error_message = "The data bucket is named <name>-<environment>-data-<account id>."
  }

  assert {
    condition     = toset(keys(output.ecs_task_definition_families)) == toset(["web", "worker", "beat", "migrate"])
    error_message = "Task definitions for web, worker, beat and migrate are expected."
  }

  assert {
    condition     = toset(keys(output.secret_arns)) == toset(["DJANGO_SECRET_KEY", "RENKEI_MASTER_KEY", "RENKEI_SERVICE_TOKEN_KEY", "DATABASE_URL", "CELERY_BROKER_URL"])
    error_message = "The tasks read exactly these four secrets."
  }

  assert {
    condition     = length(output.app_subnet_ids) == 3
    error_message = "One app subnet per availability zone (three by default)."
  }
}

# All unsafe inputs at once (one plan is cheaper than four): each validation must fire.
run "refuses_unsafe_inputs" {
  command = plan

  variables {
    region                   = "us-east-1"
    log_retention_days       = 90
    db_backup_retention_days = 3
    image_tag                = "latest"
  }

  expect_failures = [
    var.region,
    var.log_retention_days,
    var.db_backup_retention_days,
    var.image_tag,
  ]
}
