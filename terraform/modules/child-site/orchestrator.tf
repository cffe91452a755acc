# Orchestrator replicas: `meridian-child --mode orchestrator`, spread over nodes.

resource "kubernetes_deployment_v1" "orchestrator" {
  metadata {
    name      = "meridian-orchestrator"
    namespace = local.namespace
    labels    = merge(local.labels, local.orchestrator_selector)
  }

  spec {
    replicas               = var.orchestrator_replicas
    revision_history_limit = 5
    selector {
      match_labels = local.orchestrator_selector
    }
    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_unavailable = "0"
        max_surge       = "1"
      }
    }

    template {
      metadata {
        labels      = merge(local.labels, local.orchestrator_selector)
        annotations = local.pod_annotations
      }

      spec {
        service_account_name            = kubernetes_service_account_v1.orchestrator.metadata[0].name
        automount_service_account_token = false
        # Above orchestrator.shutdown_grace_seconds: tasks get their grace, then are
        # handed back before the kubelet kills the process.
        termination_grace_period_seconds = var.shutdown_grace_seconds + 30

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
            required_during_scheduling_ignored_during_execution {
              topology_key = "kubernetes.io/hostname"
              label_selector {
                match_labels = local.orchestrator_selector
              }
            }
            preferred_during_scheduling_ignored_during_execution {
              weight = 100
              pod_affinity_term {
                topology_key = "topology.kubernetes.io/zone"
                label_selector {
                  match_labels = local.orchestrator_selector
                }
              }
            }
          }
        }

        container {
          name              = "orchestrator"
          image             = var.orchestrator_image
          image_pull_policy = "IfNotPresent"
          args              = ["--mode", "orchestrator"]

          port {
            name           = "site-api"
            container_port = local.ports.site_api
          }
          port {
            name           = "worker-api"
            container_port = local.ports.worker_api
          }
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
            name = "MERIDIAN_DATABASE__URL"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.database.metadata[0].name
                key  = "url"
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
          # Data-source URLs: the configuration is checked at start-up in every mode.
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
            requests = var.orchestrator_resources.requests
            limits   = var.orchestrator_resources.limits
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
            period_seconds    = 5
            timeout_seconds   = 3
            failure_threshold = 2
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
        volume {
          name = "tls"
          secret {
            secret_name  = kubernetes_secret_v1.tls.metadata[0].name
            default_mode = "0440"
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "256Mi"
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

  depends_on = [kubernetes_job_v1.migrate]
}

resource "kubernetes_pod_disruption_budget_v1" "orchestrator" {
  metadata {
    name      = "meridian-orchestrator"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    min_available = "1"
    selector {
      match_labels = local.orchestrator_selector
    }
  }
}

# The master calls this: a network load balancer that keeps the client address, open
# only to the master's egress addresses.
resource "kubernetes_service_v1" "site_api" {
  metadata {
    name      = "meridian-site-api"
    namespace = local.namespace
    labels    = local.labels
    annotations = {
      "service.beta.kubernetes.io/aws-load-balancer-type"            = "external"
      "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type" = "ip"
      "service.beta.kubernetes.io/aws-load-balancer-scheme"          = "internet-facing"
    }
  }
  spec {
    type                        = "LoadBalancer"
    external_traffic_policy     = "Local"
    load_balancer_source_ranges = var.master_egress_cidrs
    selector                    = local.orchestrator_selector
    port {
      name        = "site-api"
      port        = local.ports.site_api
      target_port = "site-api"
    }
  }
}

resource "kubernetes_service_v1" "worker_api" {
  metadata {
    name      = "meridian-orchestrator-workers"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    type     = "ClusterIP"
    selector = local.orchestrator_selector
    port {
      name        = "worker-api"
      port        = local.ports.worker_api
      target_port = "worker-api"
    }
  }
}

resource "kubernetes_service_v1" "ops" {
  metadata {
    name      = "meridian-ops"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    cluster_ip = "None"
    selector   = { "app.kubernetes.io/name" = "meridian" }
    port {
      name        = "ops"
      port        = local.ports.ops
      target_port = "ops"
    }
  }
}
