output "alb_dns_name" {
  description = "DNS name of the ALB: point <base domain> and *.<base domain> at it (alias records)."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone id of the ALB, for alias records."
  value       = aws_lb.this.zone_id
}

output "ecr_repository_url" {
  description = "ECR repository to push the Renkei image to."
  value       = aws_ecr_repository.app.repository_url
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_names" {
  description = "ECS service names."
  value = {
    web    = aws_ecs_service.web.name
    worker = aws_ecs_service.worker.name
    beat   = aws_ecs_service.beat.name
  }
}

output "task_definition_families" {
  description = "Task definition family per role (web, worker, beat, migrate)."
  value       = { for role, td in aws_ecs_task_definition.this : role => td.family }
}

output "task_role_arn" {
  description = "IAM role the application runs as."
  value       = aws_iam_role.task.arn
}

output "web_acl_arn" {
  description = "ARN of the WAF web ACL attached to the ALB."
  value       = aws_wafv2_web_acl.this.arn
}

output "app_security_group_id" {
  description = "Security group of the ECS tasks (also for one-off tasks)."
  value       = aws_security_group.app.id
}
