# Default deny, then: master -> site-api; workers -> worker-api (and nothing else but
# their data sources); orchestrators and the migrate Job -> database; monitoring ->
# ops; everyone -> DNS.

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

resource "kubernetes_network_policy_v1" "ops" {
  metadata {
    name      = "meridian-ops-from-monitoring"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    pod_selector {
      match_labels = { "app.kubernetes.io/name" = "meridian" }
    }
    policy_types = ["Ingress"]
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
  }
}

resource "kubernetes_network_policy_v1" "orchestrator" {
  metadata {
    name      = "meridian-orchestrator"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    pod_selector {
      match_labels = local.orchestrator_selector
    }
    policy_types = ["Ingress", "Egress"]
    ingress {
      dynamic "from" {
        for_each = var.master_egress_cidrs
        content {
          ip_block {
            cidr = from.value
          }
        }
      }
      ports {
        protocol = "TCP"
        port     = "site-api"
      }
    }
    ingress {
      from {
        pod_selector {
          match_labels = local.worker_selector
        }
      }
      ports {
        protocol = "TCP"
        port     = "worker-api"
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

resource "kubernetes_network_policy_v1" "worker" {
  metadata {
    name      = "meridian-worker"
    namespace = local.namespace
    labels    = local.labels
  }
  spec {
    pod_selector {
      match_labels = local.worker_selector
    }
    policy_types = ["Ingress", "Egress"]
    egress {
      to {
        pod_selector {
          match_labels = local.orchestrator_selector
        }
      }
      ports {
        protocol = "TCP"
        port     = tostring(local.ports.worker_api)
      }
    }
    # Database data sources the workers scan.
    dynamic "egress" {
      for_each = var.worker_data_source_egress
      content {
        to {
          ip_block {
            cidr = egress.value.cidr
          }
        }
        ports {
          protocol = "TCP"
          port     = tostring(egress.value.port)
        }
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
