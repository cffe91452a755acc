output "system_default_yaml" {
  description = "The site's configuration file, for the ConfigMap mounted at /etc/config/system_default.yaml."
  value       = yamlencode(local.config)
}

output "ports" {
  description = "The listener ports the file configures."
  value       = var.ports
}
