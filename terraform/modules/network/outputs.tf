output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnets (ALB and NAT gateways only)."
  value       = aws_subnet.public[*].id
}

output "app_subnet_ids" {
  description = "Private subnets for the ECS tasks."
  value       = aws_subnet.app[*].id
}

output "db_subnet_ids" {
  description = "Isolated subnets for RDS."
  value       = aws_subnet.db[*].id
}

output "cache_subnet_ids" {
  description = "Isolated subnets for ElastiCache."
  value       = aws_subnet.cache[*].id
}
