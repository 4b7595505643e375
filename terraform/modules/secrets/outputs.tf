output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the secrets (the ECS execution role may decrypt with it)."
  value       = aws_kms_key.secrets.arn
}

output "secret_arns" {
  description = "Secret ARN per environment variable the application reads."
  value = {
    DJANGO_SECRET_KEY        = aws_secretsmanager_secret.django_secret_key.arn
    RENKEI_MASTER_KEY        = aws_secretsmanager_secret.master_key.arn
    RENKEI_SERVICE_TOKEN_KEY = aws_secretsmanager_secret.service_token_key.arn
    DATABASE_URL             = aws_secretsmanager_secret.database_url.arn
    CELERY_BROKER_URL        = aws_secretsmanager_secret.celery_broker_url.arn
  }
}

output "redis_auth_token_secret_arn" {
  description = "ARN of the secret holding the Redis AUTH token."
  value       = aws_secretsmanager_secret.redis_auth_token.arn
}

output "redis_auth_token" {
  description = "The current Redis AUTH token from Secrets Manager, for the ElastiCache replication group."
  value       = data.aws_secretsmanager_secret_version.redis_auth_token.secret_string
  sensitive   = true
}
