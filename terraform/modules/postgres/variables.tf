variable "name" {
  description = "Identifier of the instance and its companions, e.g. meridian-london."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,50}$", var.name))
    error_message = "name must start with a letter and hold only a-z, 0-9 and '-' (at most 51 characters)."
  }
}

variable "vpc_id" {
  description = "VPC of the database and the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the DB subnet group (two zones at least)."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids needs at least two subnets in different zones."
  }
}

variable "allowed_cidr_blocks" {
  description = "CIDRs allowed to reach 5432: where the orchestrator pods' traffic comes from. The cluster's NetworkPolicies keep workers out."
  type        = list(string)
  validation {
    condition     = length(var.allowed_cidr_blocks) > 0 && alltrue([for c in var.allowed_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "allowed_cidr_blocks must be non-empty valid CIDRs, and not 0.0.0.0/0."
  }
}

variable "engine_version" {
  description = "PostgreSQL version (major.minor); the parameter group family follows the major."
  type        = string
  default     = "16.4"
  validation {
    condition     = can(regex("^1[5-9]\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be PostgreSQL 15 or newer, as major.minor."
  }
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m6g.large"
}

variable "allocated_storage_gb" {
  description = "Initial storage in GiB."
  type        = number
  default     = 100
  validation {
    condition     = var.allocated_storage_gb >= 20
    error_message = "allocated_storage_gb must be at least 20."
  }
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 1000
}

variable "database_name" {
  description = "Database created in the instance."
  type        = string
  default     = "meridian"
}

variable "username" {
  description = "Master user name (its password is managed by RDS in Secrets Manager)."
  type        = string
  default     = "meridian"
}

variable "password" {
  description = "Master user password. Sensitive: it reaches the state, so keep the state encrypted."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.password) >= 16 && !can(regex("[/@\"' ]", var.password))
    error_message = "password must be at least 16 characters, without '/', '@', quotes or spaces (RDS refuses them, and it goes into a URL)."
  }
}

variable "multi_az" {
  description = "Standby in a second zone."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Automated backups and point-in-time recovery window, in days."
  type        = number
  default     = 14
  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be within 7..=35."
  }
}

variable "deletion_protection" {
  description = "Refuse deletion of the instance."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for storage and Performance Insights (null: the AWS-managed key)."
  type        = string
  default     = null
}

variable "monitoring_role_arn" {
  description = "IAM role for Enhanced Monitoring (null: off)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
