output "site_api_url" {
  description = "The URL the master uses for this site (its sites[].url)."
  value       = "https://${var.site_api_hostname}:${local.ports.site_api}"
}

output "site_api_certificate_identity" {
  description = "The identity the master must see in this site's server certificate (DNS SAN), i.e. its sites[].name."
  value       = var.site_name
}

output "site_api_load_balancer" {
  description = "Host name of the site-api load balancer, for the DNS record of site_api_hostname."
  value       = try(kubernetes_service_v1.site_api.status[0].load_balancer[0].ingress[0].hostname, null)
}

output "namespace" {
  description = "The site's namespace."
  value       = local.namespace
}

output "database_endpoint" {
  description = "host:port of the created RDS instance (null when an existing database is used)."
  value       = var.create_database ? module.database[0].endpoint : null
}
