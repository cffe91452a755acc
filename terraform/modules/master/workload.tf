# One replica (Recreate): the dispatcher, poller and canceller are not written to
# share work between replicas, and a restart resumes from the database.

resource "kubernetes_deployment_v1" "master" {
  metadata {
    name      = "meridian-master"
    namespace = local.namespace
    labels    = merge(local.labels, local.selector)
  }

  spec {
    replicas               = 1
    revision_history_limit = 5
    selector {
      match_labels = local.selector
    }
    strategy {
      type = "Recreate"
    }

    template {
      metadata {
        labels = merge(local.labels, local.selector)
        annotations = {
          "prometheus.io/scrape"        = "true"
          "prometheus.io/port"          = tostring(var.ports.ops)
          "prometheus.io/path"          = "/metrics"
          "meridian.example.com/config" = sha256(local.config_yaml)
        }
      }

      spec {
        service_account_name             = kubernetes_service_account_v1.master.metadata[0].name
        automount_service_account_token  = false
        termination_grace_period_seconds = 30

        security_context {
          run_as_non_root = true
          run_as_user     = 65532
          run_as_group    = 65532
          fs_group        = 65532
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = "master"
          image             = var.image
          image_pull_policy = "IfNotPresent"
          args              = ["serve"]

          port {
            name           = "master-api"
            container_port = var.ports.api
          }
          port {
            name           = "ops"
            container_port = var.ports.ops
          }

          env {
            name  = "MERIDIAN_MASTER_CONFIG"
            value = "/etc/config/master.yaml"
          }
          env {
            name = "MERIDIAN_MASTER_DATABASE__URL"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.database.metadata[0].name
                key  = "url"
              }
            }
          }

          resources {
            requests = { cpu = "250m", memory = "256Mi" }
            limits   = { cpu = "1", memory = "512Mi" }
          }

          startup_probe {
            http_get {
              path = "/health"
              port = "ops"
            }
            period_seconds    = 2
            failure_threshold = 60
          }
          readiness_probe {
            http_get {
              path = "/ready"
              port = "ops"
            }
            period_seconds  = 5
            timeout_seconds = 3
          }
          liveness_probe {
            http_get {
              path = "/health"
              port = "ops"
            }
            period_seconds    = 10
            timeout_seconds   = 5
            failure_threshold = 6
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            privileged                 = false
            capabilities {
              drop = ["ALL"]
            }
          }

          volume_mount {
            name       = "config"
            mount_path = "/etc/config"
            read_only  = true
          }
          volume_mount {
            name       = "tls"
            mount_path = "/etc/meridian/tls"
            read_only  = true
          }
          volume_mount {
            name       = "jwt"
            mount_path = "/etc/meridian/jwt"
            read_only  = true
          }
          volume_mount {
            name       = "api-tls"
            mount_path = "/etc/meridian/api-tls"
            read_only  = true
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "config"
          config_map {
            name = kubernetes_config_map_v1.config.metadata[0].name
          }
        }
        volume {
          name = "tls"
          secret {
            secret_name  = kubernetes_secret_v1.tls.metadata[0].name
            default_mode = "0440"
          }
        }
        volume {
          name = "jwt"
          secret {
            secret_name  = kubernetes_secret_v1.jwt.metadata[0].name
            default_mode = "0440"
          }
        }
        volume {
          name = "api-tls"
          secret {
            secret_name  = kubernetes_secret_v1.api_tls.metadata[0].name
            default_mode = "0440"
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "128Mi"
          }
        }
      }
    }
  }

  depends_on = [kubernetes_job_v1.migrate]
}

resource "kubernetes_service_v1" "master" {
  metadata {
    name      = "meridian-master"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    type     = "ClusterIP"
    selector = local.selector
    port {
      name        = "master-api"
      port        = var.ports.api
      target_port = "master-api"
    }
  }
}

resource "kubernetes_job_v1" "migrate" {
  metadata {
    name      = "meridian-master-migrate-${substr(sha256(var.image), 0, 10)}"
    namespace = local.namespace
    labels    = merge(local.labels, local.migrate_selector)
  }
  wait_for_completion = true
  timeouts {
    create = "15m"
  }
  spec {
    backoff_limit              = 3
    active_deadline_seconds    = 900
    ttl_seconds_after_finished = "86400"
    template {
      metadata {
        labels = merge(local.labels, local.migrate_selector)
      }
      spec {
        restart_policy                  = "Never"
        service_account_name            = kubernetes_service_account_v1.master.metadata[0].name
        automount_service_account_token = false
        security_context {
          run_as_non_root = true
          run_as_user     = 65532
          run_as_group    = 65532
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }
        container {
          name              = "migrate"
          image             = var.image
          image_pull_policy = "IfNotPresent"
          # Applies the migrations and exits 0, after the same configuration checks
          # as `serve`: the certificates and the JWT key must load, so the Job
          # mounts them as the master does.
          args = ["migrate"]
          env {
            name  = "MERIDIAN_MASTER_CONFIG"
            value = "/etc/config/master.yaml"
          }
          env {
            name = "MERIDIAN_MASTER_DATABASE__URL"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.database.metadata[0].name
                key  = "url"
              }
            }
          }
          resources {
            requests = { cpu = "100m", memory = "128Mi" }
            limits   = { cpu = "500m", memory = "256Mi" }
          }
          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            privileged                 = false
            capabilities {
              drop = ["ALL"]
            }
          }
          volume_mount {
            name       = "config"
            mount_path = "/etc/config"
            read_only  = true
          }
          volume_mount {
            name       = "tls"
            mount_path = "/etc/meridian/tls"
            read_only  = true
          }
          volume_mount {
            name       = "jwt"
            mount_path = "/etc/meridian/jwt"
            read_only  = true
          }
          volume_mount {
            name       = "api-tls"
            mount_path = "/etc/meridian/api-tls"
            read_only  = true
          }
        }
        volume {
          name = "config"
          config_map {
            name = kubernetes_config_map_v1.config.metadata[0].name
          }
        }
        volume {
          name = "tls"
          secret {
            secret_name  = kubernetes_secret_v1.tls.metadata[0].name
            default_mode = "0440"
          }
        }
        volume {
          name = "jwt"
          secret {
            secret_name  = kubernetes_secret_v1.jwt.metadata[0].name
            default_mode = "0440"
          }
        }
        volume {
          name = "api-tls"
          secret {
            secret_name  = kubernetes_secret_v1.api_tls.metadata[0].name
            default_mode = "0440"
          }
        }
      }
    }
  }
  depends_on = [kubernetes_network_policy_v1.migrate, kubernetes_network_policy_v1.dns]
}

resource "kubernetes_network_policy_v1" "default_deny" {
  metadata {
    name      = "meridian-default-deny"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    pod_selector {}
    policy_types = ["Ingress", "Egress"]
  }
}

resource "kubernetes_network_policy_v1" "dns" {
  metadata {
    name      = "meridian-dns"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    pod_selector {
      match_labels = { "app.kubernetes.io/name" = "meridian" }
    }
    policy_types = ["Egress"]
    egress {
      to {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = "kube-system" }
        }
        pod_selector {
          match_labels = { "k8s-app" = "kube-dns" }
        }
      }
      ports {
        protocol = "UDP"
        port     = "53"
      }
      ports {
        protocol = "TCP"
        port     = "53"
      }
    }
  }
}

resource "kubernetes_network_policy_v1" "master" {
  metadata {
    name      = "meridian-master"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    pod_selector {
      match_labels = local.selector
    }
    policy_types = ["Ingress", "Egress"]
    ingress {
      from {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = var.ingress_namespace }
        }
      }
      ports {
        protocol = "TCP"
        port     = "master-api"
      }
    }
    ingress {
      from {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = var.monitoring_namespace }
        }
      }
      ports {
        protocol = "TCP"
        port     = "ops"
      }
    }
    egress {
      dynamic "to" {
        for_each = var.site_api_cidrs
        content {
          ip_block {
            cidr = to.value
          }
        }
      }
      ports {
        protocol = "TCP"
        port     = "8443"
      }
    }
    egress {
      dynamic "to" {
        for_each = var.database_cidrs
        content {
          ip_block {
            cidr = to.value
          }
        }
      }
      ports {
        protocol = "TCP"
        port     = "5432"
      }
    }
  }
}

resource "kubernetes_network_policy_v1" "migrate" {
  metadata {
    name      = "meridian-migrate"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    pod_selector {
      match_labels = local.migrate_selector
    }
    policy_types = ["Ingress", "Egress"]
    egress {
      dynamic "to" {
        for_each = var.database_cidrs
        content {
          ip_block {
            cidr = to.value
          }
        }
      }
      ports {
        protocol = "TCP"
        port     = "5432"
      }
    }
  }
}
