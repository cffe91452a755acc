# A master in us-east-1 over two sites, london (eu-west-2) and tokyo
# (ap-northeast-1), each in its own EKS cluster with its own RDS database.
# Certificates come from a directory laid out like `meridian-master certs init`
# writes it (ca.pem, master.{pem,key}, <site>.{pem,key}, jwt-signing.pub.pem); use
# your own CA's files in production.

terraform {
  required_version = ">= 1.6"
  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.31, < 3.0"
    }
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

provider "aws" {
  alias  = "london"
  region = "eu-west-2"
}

provider "aws" {
  alias  = "tokyo"
  region = "ap-northeast-1"
}

provider "aws" {
  alias  = "master"
  region = "us-east-1"
}

provider "kubernetes" {
  alias          = "london"
  config_path    = var.kubeconfig
  config_context = var.kube_contexts.london
}

provider "kubernetes" {
  alias          = "tokyo"
  config_path    = var.kubeconfig
  config_context = var.kube_contexts.tokyo
}

provider "kubernetes" {
  alias          = "master"
  config_path    = var.kubeconfig
  config_context = var.kube_contexts.master
}

locals {
  registry = "registry.example.com/meridian"
  ca_crt   = file("${var.certs_dir}/ca.pem")

  site_tls = {
    for s in ["london", "tokyo"] : s => {
      ca_crt  = local.ca_crt
      tls_crt = file("${var.certs_dir}/${s}.pem")
      tls_key = file("${var.certs_dir}/${s}.key")
    }
  }
}

module "london" {
  source    = "../../modules/child-site"
  providers = { kubernetes = kubernetes.london, aws = aws.london }

  site_name          = "london"
  site_api_hostname  = "london.meridian.example.com"
  orchestrator_image = "${local.registry}/orchestrator:${var.meridian_version}"
  worker_image       = "${local.registry}/worker:${var.meridian_version}"

  tls                 = local.site_tls.london
  worker_key          = var.worker_keys.london
  master_egress_cidrs = var.master_egress_cidrs

  create_database   = true
  database_password = var.database_passwords.london
  database_cidrs    = var.networks.london.database_cidrs
  rds = {
    vpc_id              = var.networks.london.vpc_id
    subnet_ids          = var.networks.london.database_subnet_ids
    allowed_cidr_blocks = var.networks.london.pod_cidrs
  }

  scan_share_claim = "meridian-scan-share"
  data_sources = [{
    id               = "ds_london_hr"
    kind             = "filesystem"
    description      = "HR file share"
    root             = "/srv/share/hr"
    include          = ["**/*"]
    exclude          = ["**/.git/**"]
    max_file_size_mb = 256
  }]
  worker_max_replicas = 30
}

module "tokyo" {
  source    = "../../modules/child-site"
  providers = { kubernetes = kubernetes.tokyo, aws = aws.tokyo }

  site_name          = "tokyo"
  site_api_hostname  = "tokyo.meridian.example.com"
  orchestrator_image = "${local.registry}/orchestrator:${var.meridian_version}"
  worker_image       = "${local.registry}/worker:${var.meridian_version}"

  tls                 = local.site_tls.tokyo
  worker_key          = var.worker_keys.tokyo
  master_egress_cidrs = var.master_egress_cidrs

  create_database   = true
  database_password = var.database_passwords.tokyo
  database_cidrs    = var.networks.tokyo.database_cidrs
  rds = {
    vpc_id              = var.networks.tokyo.vpc_id
    subnet_ids          = var.networks.tokyo.database_subnet_ids
    allowed_cidr_blocks = var.networks.tokyo.pod_cidrs
  }

  data_sources = [{
    id              = "ds_tokyo_crm"
    kind            = "postgres"
    description     = "CRM database"
    url_env         = "CRM_DATABASE_URL"
    schemas         = ["public"]
    exclude_columns = ["users.password_hash"]
    sample_rows     = 1000
  }]
  data_source_secrets       = { CRM_DATABASE_URL = var.tokyo_crm_url }
  worker_data_source_egress = [{ cidr = var.networks.tokyo.crm_cidr, port = 5432 }]
}

module "master" {
  source    = "../../modules/master"
  providers = { kubernetes = kubernetes.master, aws = aws.master }

  image = "${local.registry}/master:${var.meridian_version}"
  sites = [
    { name = module.london.site_api_certificate_identity, url = module.london.site_api_url },
    { name = module.tokyo.site_api_certificate_identity, url = module.tokyo.site_api_url },
  ]
  site_api_cidrs = var.site_api_cidrs

  tls = {
    ca_crt  = local.ca_crt
    tls_crt = file("${var.certs_dir}/master.pem")
    tls_key = file("${var.certs_dir}/master.key")
  }
  # The user API's HTTPS certificate. The dev master certificate is also a server
  # certificate (SANs master, localhost, 127.0.0.1); in production use one for the
  # name the ingress connects to.
  api_tls = {
    tls_crt = file(coalesce(var.master_api_tls.cert_file, "${var.certs_dir}/master.pem"))
    tls_key = file(coalesce(var.master_api_tls.key_file, "${var.certs_dir}/master.key"))
  }
  jwt = { public_key_pem = file("${var.certs_dir}/jwt-signing.pub.pem") }

  create_database   = true
  database_password = var.database_passwords.master
  database_cidrs    = var.networks.master.database_cidrs
  rds = {
    vpc_id              = var.networks.master.vpc_id
    subnet_ids          = var.networks.master.database_subnet_ids
    allowed_cidr_blocks = var.networks.master.pod_cidrs
  }
}
