# The federation's master (`meridian-master serve`) on a Kubernetes cluster:
# namespace, Secrets, its configuration (the site list), one replica, Services,
# NetworkPolicies and the migration Job; optionally its PostgreSQL on RDS. The same
# objects as deploy/k8s/base/master.

locals {
  labels = merge(var.labels, {
    "app.kubernetes.io/name"       = "meridian"
    "app.kubernetes.io/part-of"    = "meridian"
    "app.kubernetes.io/managed-by" = "terraform"
  })
  selector         = { "app.kubernetes.io/name" = "meridian", "app.kubernetes.io/component" = "master" }
  migrate_selector = { "app.kubernetes.io/name" = "meridian", "app.kubernetes.io/component" = "migrate" }
  namespace        = kubernetes_namespace_v1.master.metadata[0].name

  config = {
    master = {
      listen                     = "0.0.0.0:${var.ports.api}"
      ops_listen                 = "0.0.0.0:${var.ports.ops}"
      data_dir                   = "/tmp/meridian-master"
      poll_interval_seconds      = var.poll_interval_seconds
      unreachable_after_failures = var.unreachable_after_failures
      request_timeout_seconds    = 10
      # HTTPS on the user API: a non-loopback master.listen refuses to start without.
      tls = {
        cert_file               = "/etc/meridian/api-tls/tls.crt"
        key_file                = "/etc/meridian/api-tls/tls.key"
        reload_interval_seconds = 5
      }
    }
    tls = {
      ca_file                 = "/etc/meridian/tls/ca.crt"
      cert_file               = "/etc/meridian/tls/tls.crt"
      key_file                = "/etc/meridian/tls/tls.key"
      reload_interval_seconds = 5
    }
    auth = {
      algorithm       = var.jwt.algorithm
      issuer          = var.jwt.issuer
      audience        = var.jwt.audience
      public_key_file = "/etc/meridian/jwt/jwt-signing.pub.pem"
    }
    database = { max_connections = 8 }
    sites    = [for s in var.sites : { name = s.name, url = s.url }]
    log      = { format = "json", level = "info" }
  }
  config_yaml = yamlencode(local.config)

  database_url = var.create_database ? format(
    "postgres://%s:%s@%s/%s?sslmode=require",
    module.database[0].username,
    urlencode(var.database_password),
    module.database[0].endpoint,
    module.database[0].database_name,
  ) : var.database_url
}

module "database" {
  count  = var.create_database ? 1 : 0
  source = "../postgres"

  name                = "meridian-master"
  vpc_id              = var.rds.vpc_id
  subnet_ids          = var.rds.subnet_ids
  allowed_cidr_blocks = var.rds.allowed_cidr_blocks
  instance_class      = var.rds.instance_class
  engine_version      = var.rds.engine_version
  password            = var.database_password
  kms_key_arn         = var.rds.kms_key_arn
  tags                = { "meridian:role" = "master" }
}

resource "kubernetes_namespace_v1" "master" {
  metadata {
    name = var.namespace
    labels = merge(local.labels, {
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
    })
  }
}

resource "kubernetes_config_map_v1" "config" {
  metadata {
    name      = "meridian-master-config"
    namespace = local.namespace
    labels    = local.labels
  }
  data = {
    "master.yaml" = local.config_yaml
  }
}

resource "kubernetes_secret_v1" "database" {
  metadata {
    name      = "meridian-master-database"
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

# The master's client identity towards the sites (DNS SAN `master`) and the mesh CA.
resource "kubernetes_secret_v1" "tls" {
  metadata {
    name      = "meridian-master-tls"
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

# The user API's server certificate (master.tls), for the name the ingress or users
# connect to. Rotating it updates the mounted files; the master re-reads them.
resource "kubernetes_secret_v1" "api_tls" {
  metadata {
    name      = "meridian-master-api-tls"
    namespace = local.namespace
    labels    = local.labels
  }
  type = "kubernetes.io/tls"
  data = {
    "tls.crt" = var.api_tls.tls_crt
    "tls.key" = var.api_tls.tls_key
  }
}

# Only the verification key: whoever mints tokens keeps the signing key.
resource "kubernetes_secret_v1" "jwt" {
  metadata {
    name      = "meridian-master-jwt"
    namespace = local.namespace
    labels    = local.labels
  }
  data = {
    "jwt-signing.pub.pem" = var.jwt.public_key_pem
  }
}

resource "kubernetes_service_account_v1" "master" {
  metadata {
    name      = "meridian-master"
    namespace = local.namespace
    labels    = local.labels
  }
  automount_service_account_token = false
}
