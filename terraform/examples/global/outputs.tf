output "site_api_urls" {
  description = "Site API URL per site (the master's sites[].url)."
  value = {
    london = module.london.site_api_url
    tokyo  = module.tokyo.site_api_url
  }
}

output "site_load_balancers" {
  description = "Load balancer host names to point the sites' DNS names at."
  value = {
    london = module.london.site_api_load_balancer
    tokyo  = module.tokyo.site_api_load_balancer
  }
}

output "master_api_url" {
  description = "In-cluster URL of the master's user API."
  value       = module.master.api_url
}
