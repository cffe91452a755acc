variable "site_name" {
  description = "The site's name: its catalog name and the DNS SAN of its certificate (the master checks it)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9-]{1,63}$", var.site_name))
    error_message = "site_name must match [a-z0-9-]{1,63}."
  }
}

variable "namespace" {
  description = "Namespace to create (null: meridian-<site_name>)."
  type        = string
  default     = null
}

variable "labels" {
  description = "Extra labels on every object."
  type        = map(string)
  default     = {}
}

variable "orchestrator_image" {
  description = "Orchestrator image (deploy/Dockerfile target `orchestrator`), pinned by tag or digest."
  type        = string
  validation {
    condition     = can(regex("[:@]", var.orchestrator_image)) && !endswith(var.orchestrator_image, ":latest")
    error_message = "orchestrator_image must carry a tag other than latest, or a digest."
  }
}

variable "worker_image" {
  description = "Worker image (deploy/Dockerfile target `worker`), pinned by tag or digest."
  type        = string
  validation {
    condition     = can(regex("[:@]", var.worker_image)) && !endswith(var.worker_image, ":latest")
    error_message = "worker_image must carry a tag other than latest, or a digest."
  }
}

variable "orchestrator_replicas" {
  description = "Orchestrator replicas (two or three: they share one database)."
  type        = number
  default     = 2
  validation {
    condition     = var.orchestrator_replicas >= 2 && var.orchestrator_replicas <= 5
    error_message = "orchestrator_replicas must be within 2..=5 (one replica is no high availability; more only add database load)."
  }
}

variable "orchestrator_resources" {
  description = "Requests and limits of an orchestrator container."
  type = object({
    requests = map(string)
    limits   = map(string)
  })
  default = {
    requests = { cpu = "500m", memory = "512Mi" }
    limits   = { cpu = "2", memory = "1Gi" }
  }
}

variable "worker_resources" {
  description = "Requests and limits of a worker container; keep the memory limit above worker.process_memory_limit_mb (1536 MiB)."
  type = object({
    requests = map(string)
    limits   = map(string)
  })
  default = {
    requests = { cpu = "1", memory = "1Gi" }
    limits   = { cpu = "2", memory = "2Gi" }
  }
}

variable "worker_min_replicas" {
  description = "Fewest worker pods the HPA keeps."
  type        = number
  default     = 2
  validation {
    condition     = var.worker_min_replicas >= 1
    error_message = "worker_min_replicas must be at least 1 (the HPA cannot scale to zero)."
  }
}

variable "worker_max_replicas" {
  description = "Most worker pods the HPA starts; bounded by what the data sources and the database take."
  type        = number
  default     = 20
  validation {
    condition     = var.worker_max_replicas >= 1 && var.worker_max_replicas <= 500
    error_message = "worker_max_replicas must be within 1..=500."
  }
}

variable "worker_slot_count" {
  description = "worker.slot_count: tasks per worker pod; also the HPA's per-pod queue-depth target."
  type        = number
  default     = 4
}

variable "shutdown_grace_seconds" {
  description = "orchestrator.shutdown_grace_seconds; the pods' terminationGracePeriodSeconds is 30 s more."
  type        = number
  default     = 30
}

variable "worker_drain_seconds" {
  description = "worker.drain_seconds; the worker pods' terminationGracePeriodSeconds is 30 s more."
  type        = number
  default     = 30
}

variable "data_sources" {
  description = "data_sources of the site's configuration (docs/configuration.md). Database sources name an env var in url_env; put the URL in data_source_secrets."
  type        = any
  default     = []
}

variable "custom_classifiers" {
  description = "classifiers.custom of the site's configuration."
  type        = any
  default     = []
}

variable "data_source_secrets" {
  description = "Environment variable name (a data source's url_env) => connection URL. Each becomes a Secret set in both roles and the migrate Job."
  type        = map(string)
  default     = {}
  sensitive   = true
  validation {
    condition     = alltrue([for k in keys(var.data_source_secrets) : can(regex("^[A-Z][A-Z0-9_]*$", k)) && !startswith(k, "MERIDIAN_")])
    error_message = "data_source_secrets keys must be upper-case variable names not starting with MERIDIAN_."
  }
}

variable "worker_data_source_egress" {
  description = "Where workers may connect besides their orchestrators: the database data sources they scan."
  type = list(object({
    cidr = string
    port = number
  }))
  default = []
  validation {
    condition     = alltrue([for e in var.worker_data_source_egress : can(cidrhost(e.cidr, 0)) && e.port > 0 && e.port < 65536])
    error_message = "each entry needs a valid CIDR and a port."
  }
}

variable "scan_share_claim" {
  description = "A ReadOnlyMany PersistentVolumeClaim holding filesystem data sources (null: none). Mounted read-only in both roles and the migrate Job."
  type        = string
  default     = null
}

variable "scan_share_mount_path" {
  description = "Where scan_share_claim is mounted; filesystem data source roots lie below it."
  type        = string
  default     = "/srv/share"
}

variable "allowed_clients" {
  description = "Client identities (DNS SANs) allowed to call the site API."
  type        = list(string)
  default     = ["master"]
}

variable "tls" {
  description = "PEM: the mesh CA (ca_crt), the site's certificate with DNS SAN = site_name (tls_crt), its key (tls_key)."
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

variable "worker_key" {
  description = "The site's worker key (at least 32 bytes), shared by orchestrators and workers."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.worker_key) >= 32
    error_message = "worker_key must be at least 32 bytes."
  }
}

variable "master_egress_cidrs" {
  description = "The master's egress addresses: the only sources allowed to the site API (load balancer and NetworkPolicy)."
  type        = list(string)
  validation {
    condition     = length(var.master_egress_cidrs) > 0 && alltrue([for c in var.master_egress_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "master_egress_cidrs must be non-empty valid CIDRs, and not 0.0.0.0/0."
  }
}

variable "database_cidrs" {
  description = "Where the site database lives: the only egress on 5432 the orchestrators and the migrate Job get."
  type        = list(string)
  validation {
    condition     = length(var.database_cidrs) > 0 && alltrue([for c in var.database_cidrs : can(cidrhost(c, 0))])
    error_message = "database_cidrs must be non-empty valid CIDRs."
  }
}

variable "monitoring_namespace" {
  description = "Namespace whose pods (Prometheus) may scrape the ops port."
  type        = string
  default     = "monitoring"
}

variable "site_api_hostname" {
  description = "DNS name the master uses for this site (a record pointing at the site-api load balancer)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", var.site_api_hostname))
    error_message = "site_api_hostname must be a DNS name."
  }
}

variable "create_database" {
  description = "Create the site's PostgreSQL on RDS (true) or use database_url (false)."
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
    error_message = "database_url must be a postgres:// or postgresql:// URL (orchestrators need PostgreSQL)."
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
    instance_class      = optional(string, "db.m6g.large")
    engine_version      = optional(string, "16.4")
    kms_key_arn         = optional(string)
  })
  default = null
}
