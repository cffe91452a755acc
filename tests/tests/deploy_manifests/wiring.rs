//! How the objects fit together without running anything: environment variable
//! names, container ports against listeners, probes, Services and the workers' URL.

use super::*;

/// `MERIDIAN_*` variables that are not `SECTION__KEY` parameters must be ones the
/// binary reads: in its `--help` (`[env: …]`), or named by the configuration (the
/// worker key, the object-key secret, a data source's `url_env`). A parameter of the
/// other family is not read at all.
pub fn check_env_names(
    family: Family,
    help: &str,
    cfg: &Effective,
    bin: &str,
    problems: &mut Vec<String>,
) {
    let mut named: BTreeSet<String> = ["worker.auth_key_env", "site.object_key_secret_env"]
        .iter()
        .filter(|_| family == Family::Site)
        .filter_map(|k| cfg.get(k))
        .collect();
    for source in at(&cfg.file, &["data_sources"])
        .as_sequence()
        .into_iter()
        .flatten()
    {
        if let Some(v) = source["url_env"].as_str() {
            named.insert(v.to_owned());
        }
    }
    for name in cfg.env.keys().filter(|n| n.starts_with("MERIDIAN_")) {
        let parameter = name.contains("__");
        let ours = match family {
            Family::Site => !name.starts_with(Family::Master.prefix()),
            Family::Master => name.starts_with(Family::Master.prefix()),
        };
        if parameter && ours {
            continue; // a configuration key: the validation run refuses unknown ones
        }
        if !parameter && (named.contains(name) || help.contains(&format!("[env: {name}="))) {
            continue;
        }
        problems.push(format!(
            "{name} is set but {bin} reads no such variable (parameters are {}SECTION__KEY)",
            family.prefix()
        ));
    }
}

/// Container ports are the listeners' ports; probes, the Prometheus annotation and
/// the image's HEALTHCHECK go to the ops listener, on a path it serves.
pub fn check_ports(
    pod: &Pod,
    c: &Container,
    role: Role,
    cfg: &Effective,
    target: &dockerfile::Target,
    problems: &mut Vec<String>,
) {
    let listeners: BTreeMap<&str, u16> = role
        .listeners()
        .iter()
        .filter_map(|k| Some((*k, cfg.port(k)?)))
        .collect();
    let configured: BTreeSet<u16> = listeners.values().copied().collect();
    let exposed: BTreeSet<u16> = c.ports.iter().map(|(_, p)| *p).collect();
    for p in exposed.difference(&configured) {
        problems.push(format!(
            "containerPort {p} has no listener (configured: {listeners:?})"
        ));
    }
    for (key, p) in &listeners {
        if !exposed.contains(p) {
            problems.push(format!("{key} listens on {p}, which is no containerPort"));
        }
    }
    let ops = role.ops_key().and_then(|k| listeners.get(k).copied());
    for probe in &c.probes {
        match (c.port(&probe.port), ops) {
            (None, _) => problems.push(format!(
                "{} port `{}` is no containerPort",
                probe.kind, probe.port
            )),
            (Some(_), None) => problems.push(format!(
                "{} needs an ops listener, and {} is not set",
                probe.kind,
                role.ops_key().unwrap_or("none of this role")
            )),
            (Some(p), Some(ops)) if p != ops => problems.push(format!(
                "{} goes to port {p}, not the ops listener ({ops})",
                probe.kind
            )),
            _ => {}
        }
        if !PROBE_PATHS.contains(&probe.path.as_str()) {
            problems.push(format!(
                "{} asks for `{}`; the ops listener serves {PROBE_PATHS:?}",
                probe.kind, probe.path
            ));
        }
    }
    if let Some(p) = pod.annotations.get("prometheus.io/port")
        && ops.map(|o| o.to_string()).as_deref() != Some(p.as_str())
    {
        problems.push(format!(
            "prometheus.io/port is {p}, not the ops listener ({ops:?})"
        ));
    }
    if let (Some(ops), Some(url)) = (ops, target.healthcheck.iter().find(|a| a.contains("://"))) {
        let rest = url.split("://").nth(1).unwrap_or_default();
        let (host_port, path) = rest.split_once('/').unwrap_or((rest, ""));
        let port = host_port
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok());
        if port != Some(ops) || !PROBE_PATHS.contains(&format!("/{path}").as_str()) {
            problems.push(format!(
                "the image's HEALTHCHECK asks {url}; the ops listener is on {ops} and serves {PROBE_PATHS:?}"
            ));
        }
    }
}

/// Every Service selects pods, and each of its ports reaches a container port of
/// every pod it selects.
pub fn check_services(objects: &Objects, pods: &[Pod], problems: &mut Vec<String>) {
    for svc in objects.of_kind("Service") {
        let name = text(svc, &["metadata", "name"]).unwrap_or_default();
        let selector: BTreeMap<String, String> = at(svc, &["spec", "selector"])
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.into(), v.as_str()?.into())))
            .collect();
        let selected: Vec<&Pod> = pods.iter().filter(|p| selects(&selector, p)).collect();
        if selected.is_empty() {
            problems.push(format!("Service `{name}` selects no pod"));
        }
        for port in at(svc, &["spec", "ports"])
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let target = match port.get("targetPort") {
                Some(v @ Value::String(_)) | Some(v @ Value::Number(_)) => match v {
                    Value::String(s) => PortRef::Name(s.clone()),
                    _ => PortRef::Number(v.as_u64().unwrap_or(0) as u16),
                },
                _ => PortRef::Number(at(port, &["port"]).as_u64().unwrap_or(0) as u16),
            };
            for pod in &selected {
                if !pod.containers.iter().any(|c| c.port(&target).is_some()) {
                    problems.push(format!(
                        "Service `{name}` targets port `{target}`, which {} does not expose",
                        pod.workload
                    ));
                }
            }
        }
    }
}

/// A Service selects the long-running pods whose labels include its selector.
pub fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    !pod.is_job
        && !selector.is_empty()
        && selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
}

/// `worker.orchestrator_url` reaches the orchestrators' worker API: the host is a
/// Service, its port one of the Service's, which leads to the worker-API port of the
/// pods it selects; https exactly when that listener serves TLS.
pub fn check_worker_urls(
    objects: &Objects,
    pods: &[Pod],
    seen: &[Seen],
    problems: &mut Vec<String>,
) {
    for s in seen {
        let Some(url) = &s.orchestrator_url else {
            continue;
        };
        let what = format!("{} container `{}`", s.workload, s.container);
        let (https, rest) = match url.split_once("://") {
            Some(("https", r)) => (true, r),
            Some(("http", r)) => (false, r),
            _ => {
                problems.push(format!("{what}: worker.orchestrator_url `{url}` is no URL"));
                continue;
            }
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().unwrap_or(0)),
            None => (authority, if https { 443 } else { 80 }),
        };
        let service_name = host.split('.').next().unwrap_or_default();
        let Some(svc) = objects.named("Service", service_name) else {
            problems.push(format!(
                "{what}: worker.orchestrator_url `{url}` names no Service of this deployment"
            ));
            continue;
        };
        let Some(svc_port) = at(svc, &["spec", "ports"])
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|p| at(p, &["port"]).as_u64() == Some(port.into()))
        else {
            problems.push(format!(
                "{what}: Service `{service_name}` has no port {port} (worker.orchestrator_url `{url}`)"
            ));
            continue;
        };
        let target = match svc_port.get("targetPort") {
            Some(Value::String(n)) => PortRef::Name(n.clone()),
            Some(v) => PortRef::Number(v.as_u64().unwrap_or(port.into()) as u16),
            None => PortRef::Number(port),
        };
        let selector: BTreeMap<String, String> = at(svc, &["spec", "selector"])
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.into(), v.as_str()?.into())))
            .collect();
        for pod in pods.iter().filter(|p| selects(&selector, p)) {
            for c in &pod.containers {
                let Some(p) = c.port(&target) else { continue };
                let api = seen
                    .iter()
                    .find(|o| o.workload == pod.workload && o.container == c.name)
                    .and_then(|o| o.worker_api);
                match api {
                    Some((listen, tls)) if listen == p => {
                        if tls != https {
                            problems.push(format!(
                                "{what}: worker.orchestrator_url `{url}` is {}, but the worker API of {} is {}",
                                if https { "https" } else { "http" },
                                pod.workload,
                                if tls { "HTTPS (api.tls)" } else { "plain HTTP" }
                            ));
                        }
                    }
                    _ => problems.push(format!(
                        "{what}: worker.orchestrator_url `{url}` reaches port {p} of {}, which is not its worker API ({api:?})",
                        pod.workload
                    )),
                }
            }
        }
    }
}
