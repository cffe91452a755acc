# The schema before the pods: the Job's name carries the image, so a new image runs
# a new Job (Jobs are immutable) and the Deployments wait for it.

resource "kubernetes_job_v1" "migrate" {
  metadata {
    name      = "meridian-migrate-${substr(sha256(var.orchestrator_image), 0, 10)}"
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
        service_account_name            = kubernetes_service_account_v1.orchestrator.metadata[0].name
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
          image             = var.orchestrator_image
          image_pull_policy = "IfNotPresent"
          # Applies the migrations and exits 0, after the configuration checks of
          # every mode: the api.tls files must load and filesystem roots and
          # url_env variables must exist, so the Job mounts and sets what the
          # orchestrators do.
          args = ["--mode", "migrate"]
          env {
            name  = "MERIDIAN_CONFIG"
            value = "/etc/config/system_default.yaml"
          }
          env {
            name  = "MERIDIAN_NODE__ID"
            value = "migrate"
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
            size_limit = "64Mi"
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

  depends_on = [kubernetes_network_policy_v1.migrate, kubernetes_network_policy_v1.dns]
}
