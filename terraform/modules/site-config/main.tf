# Renders a site's configuration file (the ConfigMap's system_default.yaml) from typed
# inputs. No provider: `terraform validate` and `terraform test` run offline here.

terraform {
  required_version = ">= 1.6"
}

locals {
  config = {
    site = {
      name      = var.site_name
      federated = true
    }
    node = {
      # Unused on PostgreSQL; /tmp is the pods' writable emptyDir.
      data_dir = "/tmp/meridian"
    }
    api = {
      listen        = "0.0.0.0:${var.ports.site_api}"
      worker_listen = "0.0.0.0:${var.ports.worker_api}"
      ops_listen    = "0.0.0.0:${var.ports.ops}"
      tls = {
        ca_file                 = "${var.tls_mount_path}/ca.crt"
        cert_file               = "${var.tls_mount_path}/tls.crt"
        key_file                = "${var.tls_mount_path}/tls.key"
        allowed_clients         = var.allowed_clients
        reload_interval_seconds = 5
      }
    }
    orchestrator = {
      shutdown_grace_seconds = var.shutdown_grace_seconds
    }
    worker = {
      # The worker API is HTTPS with the site's certificate; workers check that it
      # chains to the mesh CA (mounted alone in their pods) and names the site.
      orchestrator_url = "https://${var.worker_service_name}:${var.ports.worker_api}"
      tls = {
        ca_file = "${var.tls_mount_path}/ca.crt"
      }
      ops_listen              = "0.0.0.0:${var.ports.ops}"
      slot_count              = var.worker_slot_count
      drain_seconds           = var.worker_drain_seconds
      process_memory_limit_mb = var.worker_memory_limit_mb
    }
    database = {
      max_connections = var.database_max_connections
    }
    log = {
      format = "json"
      level  = var.log_level
    }
    classifiers = {
      custom = var.custom_classifiers
    }
    data_sources = var.data_sources
  }
}
