output "instance_id" {
  description = "RDS instance identifier."
  value       = aws_db_instance.this.identifier
}

output "resource_id" {
  description = "RDS resource id (dbi-...), used in rds-db:connect IAM policies."
  value       = aws_db_instance.this.resource_id
}

output "address" {
  description = "Host name of the database endpoint."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the database endpoint."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Name of the application database."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret (managed and rotated by RDS) holding the master user's credentials."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "kms_key_arn" {
  description = "KMS key encrypting the instance storage, Performance Insights and the master secret."
  value       = aws_kms_key.db.arn
}

output "security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.db.id
}
