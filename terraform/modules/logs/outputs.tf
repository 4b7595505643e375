output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the deployment's CloudWatch Logs log groups."
  value       = aws_kms_key.logs.arn
}
