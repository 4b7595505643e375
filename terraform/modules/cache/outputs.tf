output "primary_endpoint_address" {
  description = "Host name of the primary endpoint (follows failover)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "Redis port."
  value       = aws_elasticache_replication_group.this.port
}

output "replication_group_id" {
  description = "ID of the replication group."
  value       = aws_elasticache_replication_group.this.id
}

output "security_group_id" {
  description = "Security group of the replication group."
  value       = aws_security_group.cache.id
}
