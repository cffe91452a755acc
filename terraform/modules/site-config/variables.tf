variable "site_name" {
  description = "The site's name: its catalog name and the DNS SAN its certificate must carry."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9-]{1,63}$", var.site_name))
    error_message = "site_name must match [a-z0-9-]{1,63}."
  }
}

variable "ports" {
  description = "Listener ports: site API (mutual TLS, the master), worker API (this site's workers), ops (/health, /ready, /metrics)."
  type = object({
    site_api   = number
    worker_api = number
    ops        = number
  })
  default = { site_api = 8443, worker_api = 8444, ops = 9090 }
  validation {
    condition     = alltrue([for p in [var.ports.site_api, var.ports.worker_api, var.ports.ops] : p >= 1024 && p <= 65535]) && length(distinct([var.ports.site_api, var.ports.worker_api, var.ports.ops])) == 3
    error_message = "ports must be three distinct unprivileged ports (1024-65535); the containers run without capabilities."
  }
}

variable "tls_mount_path" {
  description = "Directory where the site's ca.crt, tls.crt and tls.key are mounted."
  type        = string
  default     = "/etc/meridian/tls"
}

variable "allowed_clients" {
  description = "Client certificate identities (DNS SANs) allowed to call the site API."
  type        = list(string)
  default     = ["master"]
  validation {
    condition     = length(var.allowed_clients) > 0
    error_message = "allowed_clients must not be empty."
  }
}

variable "worker_service_name" {
  description = "Name of the Service in front of the orchestrators' worker API."
  type        = string
  default     = "meridian-orchestrator-workers"
}

variable "shutdown_grace_seconds" {
  description = "orchestrator.shutdown_grace_seconds: on SIGTERM, how long running tasks may finish."
  type        = number
  default     = 30
  validation {
    condition     = var.shutdown_grace_seconds >= 0 && var.shutdown_grace_seconds <= 3600
    error_message = "shutdown_grace_seconds must be within 0..=3600."
  }
}

variable "worker_slot_count" {
  description = "worker.slot_count: tasks one worker pod runs at once."
  type        = number
  default     = 4
  validation {
    condition     = var.worker_slot_count >= 1 && var.worker_slot_count <= 1024
    error_message = "worker_slot_count must be within 1..=1024."
  }
}

variable "worker_drain_seconds" {
  description = "worker.drain_seconds: on SIGTERM, how long a worker's running tasks may finish."
  type        = number
  default     = 30
  validation {
    condition     = var.worker_drain_seconds >= 0 && var.worker_drain_seconds <= 3600
    error_message = "worker_drain_seconds must be within 0..=3600."
  }
}

variable "worker_memory_limit_mb" {
  description = "worker.process_memory_limit_mb: keep it below the worker container's memory limit."
  type        = number
  default     = 1536
  validation {
    condition     = var.worker_memory_limit_mb >= 64 && var.worker_memory_limit_mb <= 1048576
    error_message = "worker_memory_limit_mb must be within 64..=1048576."
  }
}

variable "database_max_connections" {
  description = "database.max_connections per orchestrator replica."
  type        = number
  default     = 8
  validation {
    condition     = var.database_max_connections >= 1 && var.database_max_connections <= 256
    error_message = "database_max_connections must be within 1..=256."
  }
}

variable "log_level" {
  description = "log.level, a tracing filter."
  type        = string
  default     = "info"
}

variable "custom_classifiers" {
  description = "classifiers.custom entries (docs/configuration.md, Classifiers)."
  type        = any
  default     = []
}

variable "data_sources" {
  description = "data_sources entries (docs/configuration.md, Data sources). Use url_env for database sources, never url."
  type        = any
  default     = []
  validation {
    condition     = alltrue([for ds in var.data_sources : can(regex("^[A-Za-z0-9_-]{1,64}$", ds.id)) && contains(["filesystem", "postgres", "synthetic"], ds.kind)])
    error_message = "each data source needs an id matching [A-Za-z0-9_-]{1,64} and a kind of filesystem, postgres or synthetic."
  }
  validation {
    condition     = alltrue([for ds in var.data_sources : !can(ds.url)])
    error_message = "a data source must not carry an inline url: use url_env and pass the URL as a Secret (it would land in a ConfigMap)."
  }
}
