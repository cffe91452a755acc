# Offline: `terraform test` needs no provider for this module.
variables {
  site_name = "london"
  data_sources = [{
    id   = "ds_london_hr"
    kind = "filesystem"
    root = "/srv/share/hr"
  }]
}

run "renders_the_listeners_and_identity" {
  command = plan

  assert {
    condition     = yamldecode(output.system_default_yaml).api.listen == "0.0.0.0:8443"
    error_message = "api.listen must be the site-api port"
  }
  assert {
    condition     = yamldecode(output.system_default_yaml).api.worker_listen == "0.0.0.0:8444"
    error_message = "api.worker_listen must be the worker-api port"
  }
  assert {
    condition     = yamldecode(output.system_default_yaml).api.ops_listen == "0.0.0.0:9090"
    error_message = "api.ops_listen must be the ops port"
  }
  assert {
    condition     = yamldecode(output.system_default_yaml).site.name == "london"
    error_message = "site.name must be the site"
  }
  assert {
    condition     = yamldecode(output.system_default_yaml).worker.orchestrator_url == "https://meridian-orchestrator-workers:8444"
    error_message = "workers must poll the worker API Service over HTTPS"
  }
  assert {
    condition     = yamldecode(output.system_default_yaml).worker.tls.ca_file == "/etc/meridian/tls/ca.crt"
    error_message = "an https orchestrator URL needs worker.tls.ca_file, the mounted mesh CA"
  }
  assert {
    condition     = yamldecode(output.system_default_yaml).worker.ops_listen == "0.0.0.0:9090"
    error_message = "worker pods' probes need worker.ops_listen on the ops port"
  }
}

run "refuses_an_inline_database_url" {
  command = plan
  variables {
    data_sources = [{ id = "crm", kind = "postgres", url = "postgres://u:p@h/db" }]
  }
  expect_failures = [var.data_sources]
}
