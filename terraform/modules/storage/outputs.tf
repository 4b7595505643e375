output "data_bucket_name" {
  description = "Name of the data bucket (RENKEI_S3_BUCKET)."
  value       = aws_s3_bucket.data.bucket
}

output "data_bucket_arn" {
  description = "ARN of the data bucket."
  value       = aws_s3_bucket.data.arn
}

output "data_kms_key_arn" {
  description = "ARN of the KMS key of the data bucket (RENKEI_S3_KMS_KEY_ID)."
  value       = aws_kms_key.data.arn
}

output "log_bucket_name" {
  description = "Name of the bucket receiving S3 and ALB access logs."
  value       = aws_s3_bucket.logs.bucket
}

output "log_bucket_arn" {
  description = "ARN of the log bucket."
  value       = aws_s3_bucket.logs.arn
}
