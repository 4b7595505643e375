# Network: one VPC, four subnet tiers per AZ.
#
#   public  - the internet-facing ALB and the NAT gateways only (no public IPs on launch)
#   app     - ECS tasks; egress to the internet through NAT (AWS APIs, Microsoft Graph)
#   db      - RDS; no route to the internet at all
#   cache   - ElastiCache; no route to the internet at all
#
# Subnets are placed by availability zone *ID* (apne1-az1, ...), which names the same
# physical zone in every account, and the list is fixed: a zone AWS adds later never
# reshuffles the subnets.
#
# Security groups live with the resources they protect (app, database, cache modules).

data "aws_region" "current" {}

locals {
  azs       = var.availability_zone_ids
  az_count  = length(var.availability_zone_ids)
  nat_count = var.single_nat_gateway ? 1 : local.az_count

  # /24 per subnet: public 0-9, app 10-19, db 20-29, cache 30-39.
  public_cidrs = [for i in range(local.az_count) : cidrsubnet(var.vpc_cidr, 8, i)]
  app_cidrs    = [for i in range(local.az_count) : cidrsubnet(var.vpc_cidr, 8, 10 + i)]
  db_cidrs     = [for i in range(local.az_count) : cidrsubnet(var.vpc_cidr, 8, 20 + i)]
  cache_cidrs  = [for i in range(local.az_count) : cidrsubnet(var.vpc_cidr, 8, 30 + i)]
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(var.tags, { Name = var.name })
}

# The default security group of a VPC allows all traffic between its members; take
# every rule away so nothing can use it by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = var.name })
}

# ---------------------------------------------------------------------------
# Subnets
# ---------------------------------------------------------------------------

resource "aws_subnet" "public" {
  count = local.az_count

  vpc_id                  = aws_vpc.this.id
  cidr_block              = local.public_cidrs[count.index]
  availability_zone_id    = local.azs[count.index]
  map_public_ip_on_launch = false

  tags = merge(var.tags, { Name = "${var.name}-public-${local.azs[count.index]}", Tier = "public" })
}

resource "aws_subnet" "app" {
  count = local.az_count

  vpc_id               = aws_vpc.this.id
  cidr_block           = local.app_cidrs[count.index]
  availability_zone_id = local.azs[count.index]

  tags = merge(var.tags, { Name = "${var.name}-app-${local.azs[count.index]}", Tier = "app" })
}

resource "aws_subnet" "db" {
  count = local.az_count

  vpc_id               = aws_vpc.this.id
  cidr_block           = local.db_cidrs[count.index]
  availability_zone_id = local.azs[count.index]

  tags = merge(var.tags, { Name = "${var.name}-db-${local.azs[count.index]}", Tier = "db" })
}

resource "aws_subnet" "cache" {
  count = local.az_count

  vpc_id               = aws_vpc.this.id
  cidr_block           = local.cache_cidrs[count.index]
  availability_zone_id = local.azs[count.index]

  tags = merge(var.tags, { Name = "${var.name}-cache-${local.azs[count.index]}", Tier = "cache" })
}

# ---------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------

resource "aws_eip" "nat" {
  count = local.nat_count

  domain = "vpc"

  tags = merge(var.tags, { Name = "${var.name}-nat-${count.index}" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id

  tags = merge(var.tags, { Name = "${var.name}-nat-${count.index}" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }

  tags = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route_table_association" "public" {
  count = local.az_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "app" {
  count = local.az_count

  vpc_id = aws_vpc.this.id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this[var.single_nat_gateway ? 0 : count.index].id
  }

  tags = merge(var.tags, { Name = "${var.name}-app-${local.azs[count.index]}" })
}

resource "aws_route_table_association" "app" {
  count = local.az_count

  subnet_id      = aws_subnet.app[count.index].id
  route_table_id = aws_route_table.app[count.index].id
}

# Data tiers: local routes only. The database and the cache never reach the internet.
resource "aws_route_table" "data" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-data-isolated" })
}

resource "aws_route_table_association" "db" {
  count = local.az_count

  subnet_id      = aws_subnet.db[count.index].id
  route_table_id = aws_route_table.data.id
}

resource "aws_route_table_association" "cache" {
  count = local.az_count

  subnet_id      = aws_subnet.cache[count.index].id
  route_table_id = aws_route_table.data.id
}

# S3 traffic from the app tier stays on the AWS network (and costs no NAT processing).
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${data.aws_region.current.name}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.app[*].id

  tags = merge(var.tags, { Name = "${var.name}-s3" })
}

# ---------------------------------------------------------------------------
# VPC flow logs (all traffic) to an encrypted log group
# ---------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = "/aws/vpc/${var.name}/flow-logs"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [aws_vpc.this.owner_id]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name_prefix        = "${substr(var.name, 0, 20)}-flowlogs-"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = [
      aws_cloudwatch_log_group.flow_logs.arn,
      "${aws_cloudwatch_log_group.flow_logs.arn}:*",
    ]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 60

  tags = var.tags
}
