variable "namespace" {
  description = "Namespace to create for the master."
  type        = string
  default     = "meridian-master"
}

variable "labels" {
  description = "Extra labels on every object."
  type        = map(string)
  default     = {}
}

variable "image" {
  description = "Master image (deploy/Dockerfile target `master`), pinned by tag or digest."
  type        = string
  validation {
    condition     = can(regex("[:@]", var.image)) && !endswith(var.image, ":latest")
    error_message = "image must carry a tag other than latest, or a digest."
  }
}

variable "ports" {
  description = "Listener ports: the user API (master.listen) and ops (master.ops_listen)."
  type = object({
    api = number
    ops = number
  })
  default = { api = 8400, ops = 9090 }
  validation {
    condition     = var.ports.api != var.ports.ops && var.ports.api >= 1024 && var.ports.ops >= 1024
    error_message = "ports must be two distinct unprivileged ports."
  }
}

variable "sites" {
  description = "The sites: name (= the DNS SAN their certificate carries) and https URL (a child-site module's site_api_url)."
  type = list(object({
    name = string
    url  = string
  }))
  validation {
    condition     = length(var.sites) > 0 && alltrue([for s in var.sites : can(regex("^[a-z0-9-]{1,63}$", s.name)) && startswith(s.url, "https://")])
    error_message = "each site needs a name matching [a-z0-9-]{1,63} and an https:// URL."
  }
  validation {
    condition     = length(distinct([for s in var.sites : s.name])) == length(var.sites)
    error_message = "site names must be unique."
  }
}

variable "site_api_cidrs" {
  description = "Addresses of the sites' site-API load balancers: the master's only egress besides DNS and its database."
  type        = list(string)
  validation {
    condition     = length(var.site_api_cidrs) > 0 && alltrue([for c in var.site_api_cidrs : can(cidrhost(c, 0))])
    error_message = "site_api_cidrs must be non-empty valid CIDRs."
  }
}

variable "poll_interval_seconds" {
  description = "master.poll_interval_seconds."
  type        = number
  default     = 5
  validation {
    condition     = var.poll_interval_seconds >= 0.05 && var.poll_interval_seconds <= 3600
    error_message = "poll_interval_seconds must be within 0.05..=3600."
  }
}

variable "unreachable_after_failures" {
  description = "master.unreachable_after_failures."
  type        = number
  default     = 2
  validation {
    condition     = var.unreachable_after_failures >= 1 && var.unreachable_after_failures <= 100
    error_message = "unreachable_after_failures must be within 1..=100."
  }
}

variable "tls" {
  description = "PEM: the mesh CA (ca_crt), the master's client certificate with DNS SAN `master` (tls_crt), its key (tls_key)."
  type = object({
    ca_crt  = string
    tls_crt = string
    tls_key = string
  })
  sensitive = true
  validation {
    condition     = strcontains(var.tls.ca_crt, "BEGIN CERTIFICATE") && strcontains(var.tls.tls_crt, "BEGIN CERTIFICATE") && strcontains(var.tls.tls_key, "PRIVATE KEY")
    error_message = "tls needs PEM text: two certificates and a private key."
  }
}

variable "api_tls" {
  description = "PEM: the user API's server certificate (tls_crt, for the name the ingress or users connect to; full chain) and its key (tls_key). master.listen is not loopback, so the master serves HTTPS only."
  type = object({
    tls_crt = string
    tls_key = string
  })
  sensitive = true
  validation {
    condition     = strcontains(var.api_tls.tls_crt, "BEGIN CERTIFICATE") && strcontains(var.api_tls.tls_key, "PRIVATE KEY")
    error_message = "api_tls needs PEM text: a certificate and a private key."
  }
}

variable "jwt" {
  description = "User-API token checks: the one accepted algorithm, issuer, audience and the verification key (PEM, public)."
  type = object({
    algorithm      = optional(string, "ES256")
    issuer         = optional(string, "meridian")
    audience       = optional(string, "meridian-api")
    public_key_pem = string
  })
  validation {
    condition     = contains(["ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"], var.jwt.algorithm) && strcontains(var.jwt.public_key_pem, "PUBLIC KEY")
    error_message = "jwt.algorithm must be asymmetric (HS* needs a secret, not a public key) and public_key_pem a PEM public key."
  }
}

variable "ingress_namespace" {
  description = "Namespace of the ingress controller allowed to the user API."
  type        = string
  default     = "ingress-nginx"
}

variable "monitoring_namespace" {
  description = "Namespace whose pods (Prometheus) may scrape the ops port."
  type        = string
  default     = "monitoring"
}

variable "database_cidrs" {
  description = "Where the master database lives: the master's only egress on 5432."
  type        = list(string)
  validation {
    condition     = length(var.database_cidrs) > 0 && alltrue([for c in var.database_cidrs : can(cidrhost(c, 0))])
    error_message = "database_cidrs must be non-empty valid CIDRs."
  }
}

variable "create_database" {
  description = "Create the master's PostgreSQL on RDS (true) or use database_url (false)."
  type        = bool
  default     = false
}

variable "database_url" {
  description = "postgres:// URL of an existing database, when create_database is false."
  type        = string
  default     = null
  sensitive   = true
  validation {
    condition     = var.database_url == null || can(regex("^postgres(ql)?://", var.database_url))
    error_message = "database_url must be a postgres:// or postgresql:// URL."
  }
}

variable "database_password" {
  description = "Password of the RDS master user, when create_database is true."
  type        = string
  default     = null
  sensitive   = true
}

variable "rds" {
  description = "RDS settings, when create_database is true."
  type = object({
    vpc_id              = string
    subnet_ids          = list(string)
    allowed_cidr_blocks = list(string)
    instance_class      = optional(string, "db.t4g.medium")
    engine_version      = optional(string, "16.4")
    kms_key_arn         = optional(string)
  })
  default = null
}
