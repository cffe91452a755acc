# One Meridian site in the distributed model on a Kubernetes cluster: namespace,
# Secrets, the configuration file, orchestrator replicas, autoscaled workers, the
# migration Job, Services and NetworkPolicies; optionally its PostgreSQL on RDS.
# The same objects as deploy/k8s/base/site, for teams that drive everything from
# Terraform.

locals {
  labels = merge(var.labels, {
    "app.kubernetes.io/name"       = "meridian"
    "app.kubernetes.io/part-of"    = "meridian"
    "app.kubernetes.io/managed-by" = "terraform"
    "meridian.example.com/site"    = var.site_name
  })
  orchestrator_selector = { "app.kubernetes.io/name" = "meridian", "app.kubernetes.io/component" = "orchestrator" }
  worker_selector       = { "app.kubernetes.io/name" = "meridian", "app.kubernetes.io/component" = "worker" }
  migrate_selector      = { "app.kubernetes.io/name" = "meridian", "app.kubernetes.io/component" = "migrate" }

  namespace = kubernetes_namespace_v1.site.metadata[0].name
  ports     = module.config.ports

  database_url = var.create_database ? format(
    "postgres://%s:%s@%s/%s?sslmode=require",
    module.database[0].username,
    urlencode(var.database_password),
    module.database[0].endpoint,
    module.database[0].database_name,
  ) : var.database_url

  # Config changes roll the pods (non-live keys need a restart).
  config_hash = sha256(module.config.system_default_yaml)

  pod_annotations = {
    "prometheus.io/scrape"        = "true"
    "prometheus.io/port"          = tostring(local.ports.ops)
    "prometheus.io/path"          = "/metrics"
    "meridian.example.com/config" = local.config_hash
  }
}

module "config" {
  source = "../site-config"

  site_name              = var.site_name
  shutdown_grace_seconds = var.shutdown_grace_seconds
  worker_slot_count      = var.worker_slot_count
  worker_drain_seconds   = var.worker_drain_seconds
  data_sources           = var.data_sources
  custom_classifiers     = var.custom_classifiers
  allowed_clients        = var.allowed_clients
}

module "database" {
  count  = var.create_database ? 1 : 0
  source = "../postgres"

  name                = "meridian-${var.site_name}"
  vpc_id              = var.rds.vpc_id
  subnet_ids          = var.rds.subnet_ids
  allowed_cidr_blocks = var.rds.allowed_cidr_blocks
  instance_class      = var.rds.instance_class
  engine_version      = var.rds.engine_version
  password            = var.database_password
  kms_key_arn         = var.rds.kms_key_arn
  tags                = { "meridian:site" = var.site_name }
}

resource "kubernetes_namespace_v1" "site" {
  metadata {
    name = var.namespace != null ? var.namespace : "meridian-${var.site_name}"
    labels = merge(local.labels, {
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
    })
  }
}

resource "kubernetes_config_map_v1" "config" {
  metadata {
    name      = "meridian-site-config"
    namespace = local.namespace
    labels    = local.labels
  }
  data = {
    "system_default.yaml" = module.config.system_default_yaml
  }
}

resource "kubernetes_secret_v1" "database" {
  metadata {
    name      = "meridian-database"
    namespace = local.namespace
    labels    = local.labels
  }
  data = {
    url = local.database_url
  }
  lifecycle {
    precondition {
      condition     = var.create_database ? (var.rds != null && var.database_password != null) : var.database_url != null
      error_message = "Set rds and database_password with create_database = true, or database_url with create_database = false."
    }
  }
}

resource "kubernetes_secret_v1" "worker_key" {
  metadata {
    name      = "meridian-worker-key"
    namespace = local.namespace
    labels    = local.labels
  }
  data = {
    key = var.worker_key
  }
}

# The site's server identity (DNS SAN = site name) and the mesh CA. Rotating these
# values updates the mounted files in place; the site picks them up without a
# restart.
resource "kubernetes_secret_v1" "tls" {
  metadata {
    name      = "meridian-site-tls"
    namespace = local.namespace
    labels    = local.labels
  }
  type = "kubernetes.io/tls"
  data = {
    "ca.crt"  = var.tls.ca_crt
    "tls.crt" = var.tls.tls_crt
    "tls.key" = var.tls.tls_key
  }
}

resource "kubernetes_secret_v1" "data_source" {
  for_each = nonsensitive(toset(keys(var.data_source_secrets)))
  metadata {
    name      = "meridian-datasource-${lower(replace(each.key, "_", "-"))}"
    namespace = local.namespace
    labels    = local.labels
  }
  data = {
    url = var.data_source_secrets[each.key]
  }
}

resource "kubernetes_service_account_v1" "orchestrator" {
  metadata {
    name      = "meridian-orchestrator"
    namespace = local.namespace
    labels    = local.labels
  }
  automount_service_account_token = false
}

resource "kubernetes_service_account_v1" "worker" {
  metadata {
    name      = "meridian-worker"
    namespace = local.namespace
    labels    = local.labels
  }
  automount_service_account_token = false
}
