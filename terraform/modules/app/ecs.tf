# Task definitions (web, worker, beat, migrate) and services (web, worker, beat).
# Every task: the Renkei container (non-root, read-only root filesystem, all Linux
# capabilities dropped, writable /tmp and RENKEI_HOME on task storage) plus the ADOT
# collector sidecar that receives OTLP on localhost and exports to X-Ray and CloudWatch.

locals {
  image = coalesce(var.container_image, "${aws_ecr_repository.app.repository_url}:${var.image_tag}")

  renkei_home = "/var/lib/renkei"
  celery_app  = "renkei.site.celery:app"

  common_environment = [
    { name = "DEBUG", value = "false" },
    { name = "RENKEI_SECURE_COOKIES", value = "true" },
    { name = "RENKEI_CONN_MAX_AGE", value = "60" },
    { name = "RENKEI_HOME", value = local.renkei_home },
    { name = "RENKEI_ALLOWED_HOSTS", value = var.allowed_hosts },
    { name = "RENKEI_BASE_DOMAIN", value = var.base_domain },
    { name = "RENKEI_STORAGE", value = "s3" },
    { name = "RENKEI_S3_BUCKET", value = var.data_bucket_name },
    { name = "RENKEI_S3_KMS_KEY_ID", value = var.data_kms_key_arn },
    { name = "AWS_REGION", value = local.region },
    { name = "OTEL_EXPORTER_OTLP_ENDPOINT", value = "http://127.0.0.1:4317" },
    { name = "OTEL_RESOURCE_ATTRIBUTES", value = "deployment.environment=${var.environment}" },
  ]

  secrets = [
    for name in sort(keys(var.secret_arns)) : { name = name, valueFrom = var.secret_arns[name] }
  ]

  roles = {
    web = {
      cpu     = var.web.cpu
      memory  = var.web.memory
      command = ["gunicorn", "-c", "infra/gunicorn.conf.py", "renkei.site.wsgi:application"]
      environment = [
        { name = "OTEL_SERVICE_NAME", value = "renkei-web" },
        { name = "WEB_CONCURRENCY", value = tostring(var.web.workers) },
        # Only the ALB can reach the tasks (security group), so trust its X-Forwarded-*.
        { name = "FORWARDED_ALLOW_IPS", value = "*" },
      ]
      port_mappings = [{ containerPort = var.app_port, protocol = "tcp" }]
      health_check = {
        command = [
          "CMD", "python", "-c",
          "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:${var.app_port}/healthz', timeout=4).status == 200 else 1)",
        ]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
    }
    worker = {
      cpu     = var.worker.cpu
      memory  = var.worker.memory
      command = ["celery", "-A", local.celery_app, "worker", "--loglevel=INFO", "--concurrency=${var.worker.concurrency}"]
      environment = [
        { name = "OTEL_SERVICE_NAME", value = "renkei-worker" },
      ]
      port_mappings = []
      health_check  = null
    }
    beat = {
      cpu     = 256
      memory  = 512
      command = ["celery", "-A", local.celery_app, "beat", "--loglevel=INFO", "--schedule=${local.renkei_home}/celerybeat-schedule"]
      environment = [
        { name = "OTEL_SERVICE_NAME", value = "renkei-beat" },
      ]
      port_mappings = []
      health_check  = null
    }
    # One-off: `aws ecs run-task --task-definition <name>-migrate ...` (infra/README.md).
    # Also the definition to run other commands with a container override, e.g.
    # ["renkei", "onboard", "--code", "131130", ...].
    migrate = {
      cpu     = 512
      memory  = 1024
      command = ["renkei", "migrate"]
      environment = [
        { name = "OTEL_SERVICE_NAME", value = "renkei-migrate" },
      ]
      port_mappings = []
      health_check  = null
    }
  }

  # Collector configuration for the sidecar, passed through AOT_CONFIG_CONTENT.
  otel_config = yamlencode({
    extensions = { health_check = {} }
    receivers = {
      otlp = {
        protocols = {
          grpc = { endpoint = "127.0.0.1:4317" }
          http = { endpoint = "127.0.0.1:4318" }
        }
      }
    }
    processors = {
      memory_limiter    = { check_interval = "1s", limit_percentage = 80, spike_limit_percentage = 25 }
      resourcedetection = { detectors = ["env", "ecs"], timeout = "5s", override = false }
      # Defence in depth: no personal data in telemetry (same list as infra/otel-collector.yaml).
      "attributes/drop-personal-data" = {
        actions = concat(
          [for key in ["url.query", "http.url", "url.full", "http.target", "client.address", "http.client_ip", "net.sock.peer.addr", "user_agent.original", "http.user_agent", "enduser.id"] :
          { key = key, action = "delete" }],
          [for pattern in ["^db\\.query\\.parameter\\..*", "^http\\.request\\.header\\..*"] :
          { pattern = pattern, action = "delete" }],
        )
      }
      "batch/traces"  = { timeout = "1s", send_batch_size = 50 }
      "batch/metrics" = { timeout = "60s" }
    }
    exporters = {
      awsxray = { region = local.region }
      awsemf = {
        region                           = local.region
        namespace                        = "Renkei"
        log_group_name                   = aws_cloudwatch_log_group.otel_metrics.name
        resource_to_telemetry_conversion = { enabled = false }
      }
    }
    service = {
      extensions = ["health_check"]
      pipelines = {
        traces = {
          receivers  = ["otlp"]
          processors = ["memory_limiter", "resourcedetection", "attributes/drop-personal-data", "batch/traces"]
          exporters  = ["awsxray"]
        }
        metrics = {
          receivers  = ["otlp"]
          processors = ["memory_limiter", "resourcedetection", "attributes/drop-personal-data", "batch/metrics"]
          exporters  = ["awsemf"]
        }
      }
    }
  })

  app_containers = {
    for role, r in local.roles : role => {
      for k, v in {
        name                   = "renkei"
        image                  = local.image
        essential              = true
        command                = r.command
        user                   = "10001:10001"
        readonlyRootFilesystem = true
        privileged             = false
        environment            = concat(local.common_environment, r.environment)
        secrets                = local.secrets
        portMappings           = r.port_mappings
        healthCheck            = r.health_check
        stopTimeout            = 30
        linuxParameters = {
          initProcessEnabled = true
          capabilities       = { drop = ["ALL"] }
        }
        mountPoints = [
          { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
          { sourceVolume = "renkei-home", containerPath = local.renkei_home, readOnly = false },
        ]
        dependsOn = [{ containerName = "otel-collector", condition = "START" }]
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            "awslogs-group"         = aws_cloudwatch_log_group.app[role].name
            "awslogs-region"        = local.region
            "awslogs-stream-prefix" = role
          }
        }
      } : k => v if v != null
    }
  }

  otel_container = {
    name                   = "otel-collector"
    image                  = var.otel_collector_image
    essential              = false
    readonlyRootFilesystem = true
    privileged             = false
    environment            = [{ name = "AOT_CONFIG_CONTENT", value = local.otel_config }]
    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.app["otel-collector"].name
        "awslogs-region"        = local.region
        "awslogs-stream-prefix" = "otel"
      }
    }
  }
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.roles

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Fargate task storage (ephemeral, encrypted by Fargate): the only writable paths.
  volume {
    name = "tmp"
  }

  volume {
    name = "renkei-home"
  }

  container_definitions = jsonencode([local.app_containers[each.key], local.otel_container])

  tags = var.tags
}

# ---------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------

resource "aws_ecs_service" "web" {
  name             = "web"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this["web"].arn
  desired_count    = var.web.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 60
  enable_execute_command             = var.enable_execute_command
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.app_subnet_ids
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.web.arn
    container_name   = "renkei"
    container_port   = var.app_port
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by autoscaling
  }

  tags = var.tags

  depends_on = [aws_lb_listener.https, aws_iam_role_policy.execution]
}

resource "aws_ecs_service" "worker" {
  name             = "worker"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this["worker"].arn
  desired_count    = var.worker.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_execute_command             = var.enable_execute_command
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.app_subnet_ids
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by autoscaling
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.execution]
}

# Exactly one beat: a deployment stops the old task before starting the new one, so
# periodic jobs are never scheduled twice.
resource "aws_ecs_service" "beat" {
  name             = "beat"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this["beat"].arn
  desired_count    = 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  enable_execute_command             = var.enable_execute_command
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.app_subnet_ids
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.execution]
}

# ---------------------------------------------------------------------------
# Autoscaling (CPU target tracking)
# ---------------------------------------------------------------------------

locals {
  scaled = {
    web    = { service = aws_ecs_service.web.name, min = var.web.min_count, max = var.web.max_count, target = 60 }
    worker = { service = aws_ecs_service.worker.name, min = var.worker.min_count, max = var.worker.max_count, target = 70 }
  }
}

resource "aws_appautoscaling_target" "this" {
  for_each = local.scaled

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${each.value.service}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.min
  max_capacity       = each.value.max
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each = local.scaled

  name               = "${var.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
