# Remote workers (`meridian-worker`), no database credentials, polling the worker
# API over HTTPS (trusting the mesh CA), autoscaled on the site's queue depth.

resource "kubernetes_deployment_v1" "worker" {
  metadata {
    name      = "meridian-worker"
    namespace = local.namespace
    labels    = merge(local.labels, local.worker_selector)
  }

  # The HPA owns the replica count after the first apply.
  lifecycle {
    ignore_changes = [spec[0].replicas]
  }

  spec {
    replicas               = var.worker_min_replicas
    revision_history_limit = 5
    selector {
      match_labels = local.worker_selector
    }

    template {
      metadata {
        labels      = merge(local.labels, local.worker_selector)
        annotations = local.pod_annotations
      }

      spec {
        service_account_name            = kubernetes_service_account_v1.worker.metadata[0].name
        automount_service_account_token = false
        # Above worker.drain_seconds: running tasks finish or are handed back.
        termination_grace_period_seconds = var.worker_drain_seconds + 30

        security_context {
          run_as_non_root = true
          run_as_user     = 65532
          run_as_group    = 65532
          fs_group        = 65532
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        affinity {
          pod_anti_affinity {
            preferred_during_scheduling_ignored_during_execution {
              weight = 50
              pod_affinity_term {
                topology_key = "kubernetes.io/hostname"
                label_selector {
                  match_labels = local.worker_selector
                }
              }
            }
          }
        }

        container {
          name              = "worker"
          image             = var.worker_image
          image_pull_policy = "IfNotPresent"

          port {
            name           = "ops"
            container_port = local.ports.ops
          }

          env {
            name  = "MERIDIAN_CONFIG"
            value = "/etc/config/system_default.yaml"
          }
          env {
            name = "MERIDIAN_NODE__ID"
            value_from {
              field_ref {
                field_path = "metadata.name"
              }
            }
          }
          env {
            name = "MERIDIAN_WORKER_AUTH_KEY"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.worker_key.metadata[0].name
                key  = "key"
              }
            }
          }
          dynamic "env" {
            for_each = nonsensitive(toset(keys(var.data_source_secrets)))
            content {
              name = env.key
              value_from {
                secret_key_ref {
                  name = kubernetes_secret_v1.data_source[env.key].metadata[0].name
                  key  = "url"
                }
              }
            }
          }

          resources {
            requests = var.worker_resources.requests
            limits   = var.worker_resources.limits
          }

          startup_probe {
            http_get {
              path = "/health"
              port = "ops"
            }
            period_seconds    = 2
            failure_threshold = 30
          }
          readiness_probe {
            http_get {
              path = "/ready"
              port = "ops"
            }
            period_seconds  = 10
            timeout_seconds = 3
          }
          liveness_probe {
            http_get {
              path = "/health"
              port = "ops"
            }
            period_seconds    = 15
            timeout_seconds   = 5
            failure_threshold = 4
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
            name       = "site-ca"
            mount_path = "/etc/meridian/tls"
            read_only  = true
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
          dynamic "volume_mount" {
            for_each = var.scan_share_claim == null ? [] : [var.scan_share_claim]
            content {
              name       = "share"
              mount_path = var.scan_share_mount_path
              read_only  = true
            }
          }
        }

        volume {
          name = "config"
          config_map {
            name = kubernetes_config_map_v1.config.metadata[0].name
          }
        }
        # Only the CA (worker.tls.ca_file): workers verify the worker API's
        # certificate with it and never see the site's private key.
        volume {
          name = "site-ca"
          secret {
            secret_name  = kubernetes_secret_v1.tls.metadata[0].name
            default_mode = "0440"
            items {
              key  = "ca.crt"
              path = "ca.crt"
            }
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "1Gi"
          }
        }
        dynamic "volume" {
          for_each = var.scan_share_claim == null ? [] : [var.scan_share_claim]
          content {
            name = "share"
            persistent_volume_claim {
              claim_name = volume.value
              read_only  = true
            }
          }
        }
      }
    }
  }
}

# External metric served by prometheus-adapter (deploy/prometheus/adapter-rules.yaml):
# PENDING + RUNNING tasks of this namespace; one worker per worker_slot_count of them.
resource "kubernetes_horizontal_pod_autoscaler_v2" "worker" {
  metadata {
    name      = "meridian-worker"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    min_replicas = var.worker_min_replicas
    max_replicas = var.worker_max_replicas
    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.worker.metadata[0].name
    }
    metric {
      type = "External"
      external {
        metric {
          name = "meridian_queue_depth"
        }
        target {
          type          = "AverageValue"
          average_value = tostring(var.worker_slot_count)
        }
      }
    }
    behavior {
      scale_up {
        stabilization_window_seconds = 0
        select_policy                = "Max"
        policy {
          type           = "Percent"
          value          = 100
          period_seconds = 60
        }
      }
      scale_down {
        stabilization_window_seconds = 300
        select_policy                = "Min"
        policy {
          type           = "Pods"
          value          = 2
          period_seconds = 60
        }
      }
    }
  }
}
