variable "meridian_version" {
  description = "Image tag of all three images."
  type        = string
  default     = "0.1.0"
  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+", var.meridian_version))
    error_message = "meridian_version must be a release version (x.y.z...)."
  }
}

variable "kubeconfig" {
  description = "kubeconfig holding the three clusters' contexts."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_contexts" {
  description = "kubeconfig context per cluster."
  type = object({
    london = string
    tokyo  = string
    master = string
  })
}

variable "certs_dir" {
  description = "Directory with ca.pem, master.{pem,key}, london.{pem,key}, tokyo.{pem,key} and jwt-signing.pub.pem."
  type        = string
}

variable "master_api_tls" {
  description = "PEM files of the master's user-API server certificate and key (null: certs_dir's master.pem and master.key)."
  type = object({
    cert_file = optional(string)
    key_file  = optional(string)
  })
  default = {}
}

variable "master_egress_cidrs" {
  description = "The master cluster's NAT addresses, as /32 CIDRs: the only sources the sites accept."
  type        = list(string)
}

variable "site_api_cidrs" {
  description = "Addresses of the sites' load balancers: the master's allowed egress on 8443."
  type        = list(string)
}

variable "networks" {
  description = "Per cluster: VPC, database subnets and CIDRs, the CIDRs pods' traffic leaves from, and (tokyo) the CRM database."
  type = map(object({
    vpc_id              = string
    database_subnet_ids = list(string)
    database_cidrs      = list(string)
    pod_cidrs           = list(string)
    crm_cidr            = optional(string)
  }))
  validation {
    condition     = alltrue([for k in ["london", "tokyo", "master"] : contains(keys(var.networks), k)]) && var.networks["tokyo"].crm_cidr != null
    error_message = "networks needs london, tokyo and master entries, and tokyo's crm_cidr."
  }
}

variable "worker_keys" {
  description = "Per site, the worker key (at least 32 bytes), e.g. head -c 48 /dev/urandom | base64."
  type = object({
    london = string
    tokyo  = string
  })
  sensitive = true
}

variable "database_passwords" {
  description = "RDS master passwords per database."
  type = object({
    london = string
    tokyo  = string
    master = string
  })
  sensitive = true
}

variable "tokyo_crm_url" {
  description = "postgres:// URL (read-only role) of tokyo's CRM database, the data source its workers scan."
  type        = string
  sensitive   = true
}
