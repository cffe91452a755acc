output "namespace" {
  description = "The master's namespace."
  value       = local.namespace
}

output "api_url" {
  description = "In-cluster URL of the user API, HTTPS with api_tls's certificate (front it with the ingress for users)."
  value       = "https://meridian-master.${local.namespace}.svc:${var.ports.api}"
}

output "certificate_identity" {
  description = "The identity the sites must allow (api.tls.allowed_clients)."
  value       = "master"
}

output "database_endpoint" {
  description = "host:port of the created RDS instance (null when an existing database is used)."
  value       = var.create_database ? module.database[0].endpoint : null
}
