//! Security of the federation with real processes: mutual TLS between master and
//! sites (allow-list, foreign CA, wrong site, rotation) and JWTs on the user API.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use meridian_master::auth::Role;
use meridian_master::certs;
use meridian_tests::mesh::{Mesh, mtls_client};
use serde_json::{Value, json};

fn synthetic(id: &str) -> String {
    format!("  - id: {id}\n    kind: synthetic\n    objects: 2\n    work_ms: 1\n")
}

async fn sites_of(mesh: &Mesh) -> BTreeMap<String, Value> {
    let (code, body) = mesh.get("/api/v1/sites").await;
    assert_eq!(code, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_refuses_clients_without_an_allowed_certificate_of_the_mesh() {
    let mut mesh = Mesh::new(&["london", "tokyo"]);
    mesh.configure_site("london", &synthetic("ds_london_01"), "");
    mesh.start_site("london").await;
    let url = format!("{}/data_sources", mesh.sites["london"].url());
    let ca = reqwest::Certificate::from_pem(&std::fs::read(mesh.certs.ca()).unwrap()).unwrap();

    let allowed = mesh
        .mtls
        .get(&url)
        .send()
        .await
        .expect("the master's certificate is accepted");
    assert_eq!(allowed.status(), 200);

    let anonymous = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .build()
        .unwrap();
    assert!(
        anonymous.get(&url).send().await.is_err(),
        "no client certificate"
    );

    let other = certs::init(&mesh.path().join("other-ca"), &["london".into()]).unwrap();
    let mut pem = std::fs::read(other.cert("master")).unwrap();
    pem.extend(std::fs::read(other.key("master")).unwrap());
    let foreign = reqwest::Client::builder()
        .tls_certs_only([ca])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    assert!(
        foreign.get(&url).send().await.is_err(),
        "a `master` certificate from another CA"
    );

    let tokyo = mtls_client(&mesh.certs, "tokyo");
    assert!(
        tokyo.get(&url).send().await.is_err(),
        "a mesh certificate whose identity is not allowed"
    );

    let plain = reqwest::Client::new();
    let http_url = url.replace("https://", "http://");
    let refused = plain.get(&http_url).send().await;
    assert!(
        refused.is_err() || refused.unwrap().status() != 200,
        "plain HTTP on the TLS port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_refuses_a_site_that_presents_another_sites_certificate() {
    let mut mesh = Mesh::new(&["london", "tokyo"]);
    mesh.configure_site("london", &synthetic("ds_london_01"), "");
    mesh.configure_site("tokyo", &synthetic("ds_tokyo_01"), "");
    mesh.start_site("tokyo").await;
    // `london` points at tokyo's process, which shows tokyo's certificate.
    let tokyo_url = mesh.sites["tokyo"].url();
    mesh.configure_master("", &BTreeMap::from([("london".to_owned(), tokyo_url)]));
    mesh.start_master().await;
    mesh.wait_catalog(1).await;
    let start = Instant::now();
    let sites = loop {
        let sites = sites_of(&mesh).await;
        if sites["london"]["reachability"] == "UNREACHABLE"
            && sites["tokyo"]["reachability"] == "REACHABLE"
        {
            break sites;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{sites:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let err = sites["london"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(err.contains("certificate"), "the error says why: {err}");
    let (_, catalog) = mesh.get("/api/v1/data_sources").await;
    assert_eq!(
        catalog,
        json!([{"id": "ds_tokyo_01", "kind": "synthetic", "site": "tokyo", "description": ""}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificate_files_are_picked_up_without_a_restart() {
    let mut mesh = Mesh::new(&["london"]);
    mesh.configure_site("london", &synthetic("ds_london_01"), "");
    mesh.start_site("london").await;
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    mesh.wait_catalog(1).await;
    let url = format!("{}/ready", mesh.sites["london"].url());
    let old_identity = [
        std::fs::read(mesh.certs.cert("master")).unwrap(),
        std::fs::read(mesh.certs.key("master")).unwrap(),
    ]
    .concat();

    // A whole new mesh CA, renamed over the files both processes were started with.
    let fresh = certs::init(&mesh.path().join("rotated"), &["london".into()]).unwrap();
    for f in [
        "ca.pem",
        "london.pem",
        "london.key",
        "master.pem",
        "master.key",
    ] {
        let tmp = mesh.certs.dir.join(format!(".{f}.new"));
        std::fs::copy(fresh.dir.join(f), &tmp).unwrap();
        std::fs::rename(&tmp, mesh.certs.dir.join(f)).unwrap();
    }

    // The running site starts serving the new certificate and trusting the new CA.
    let new_client = mtls_client(&mesh.certs, "master");
    let start = Instant::now();
    while !new_client
        .get(&url)
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the site never took the rotated files"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let new_ca = reqwest::Certificate::from_pem(&std::fs::read(mesh.certs.ca()).unwrap()).unwrap();
    let old_client = reqwest::Client::builder()
        .tls_certs_only([new_ca])
        .identity(reqwest::Identity::from_pem(&old_identity).unwrap())
        .build()
        .unwrap();
    assert!(
        old_client.get(&url).send().await.is_err(),
        "the pre-rotation identity is refused"
    );

    // The master re-read its files too. Restarting the site drops every connection
    // made before the rotation, so the polls that succeed afterwards were made with
    // the new identity and checked against the new CA.
    tokio::time::sleep(Duration::from_secs(2)).await;
    mesh.mtls = new_client;
    mesh.kill_site("london");
    mesh.start_site("london").await;
    let seen_before = sites_of(&mesh).await["london"]["last_seen_at"].clone();
    let start = Instant::now();
    loop {
        let london = sites_of(&mesh).await["london"].clone();
        if london["reachability"] == "REACHABLE"
            && london["consecutive_failures"] == 0
            && london["last_seen_at"].as_str() > seen_before.as_str()
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the master never reached london with the new files: {london}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let master_log = mesh.master.as_ref().unwrap().log_text();
    assert!(
        master_log.contains("TLS files changed"),
        "the master noticed the rotation"
    );
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_api_refuses_bad_tokens_and_checks_roles() {
    let mut mesh = Mesh::new(&[]);
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    let auth = mesh.auth();
    let key = EncodingKey::from_ec_pem(&std::fs::read(mesh.certs.jwt_private()).unwrap()).unwrap();
    let sign = |claims: &Value| {
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
    };
    let good = json!({"sub": "t", "iss": auth.issuer, "aud": auth.audience, "exp": now() + 600, "roles": ["viewer"]});
    let get = |token: String| {
        let mesh = &mesh;
        async move {
            mesh.api(reqwest::Method::GET, "/api/v1/jobs", &token, None)
                .await
        }
    };

    assert_eq!(get(sign(&good)).await.0, 200, "a valid viewer token reads");

    let mut expired = good.clone();
    expired["exp"] = json!(now() - 120);
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("evil");
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    // Algorithm confusion: HS256 keyed with the public key the server trusts.
    let public = std::fs::read(mesh.certs.jwt_public()).unwrap();
    let swapped = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(good.to_string().as_bytes())
    );
    let valid = sign(&good);
    let parts: Vec<&str> = valid.split('.').collect();
    let mut admin = good.clone();
    admin["roles"] = json!(["admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(admin.to_string().as_bytes()),
        parts[2]
    );
    for (what, token) in [
        ("expired", sign(&expired)),
        ("wrong aud", sign(&wrong_aud)),
        ("wrong iss", sign(&wrong_iss)),
        ("no exp", sign(&no_exp)),
        ("alg swapped", swapped),
        ("unsigned", unsigned),
        ("tampered", tampered),
        ("garbage", "not.a.token".to_owned()),
    ] {
        let (code, body) = get(token).await;
        assert_eq!(code, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{what}");
    }
    let resp = mesh
        .http
        .get(format!("{}/api/v1/jobs", mesh.master_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "no token");
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");

    let create = json!({"name": "x", "data_sources": ["ds_nowhere"]});
    let (code, body) = mesh
        .api(
            reqwest::Method::POST,
            "/api/v1/jobs",
            &mesh.token(Role::Viewer),
            Some(&create),
        )
        .await;
    assert_eq!(code, 403, "a viewer cannot create: {body}");
    let (code, body) = mesh
        .api(
            reqwest::Method::POST,
            "/api/v1/jobs",
            &mesh.token(Role::Operator),
            Some(&create),
        )
        .await;
    assert_eq!(
        code, 422,
        "an operator gets past auth to validation: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ds_nowhere")
    );
    let log = mesh.master.as_ref().unwrap().log_text();
    assert!(!log.contains(&valid), "tokens never reach the log");
    assert_eq!(
        mesh.http
            .get(format!("{}/health", mesh.master_url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Runs `meridian-master serve --config config`, expects exit 2; its stderr.
fn master_refuses(config: &std::path::Path) -> String {
    let out = std::process::Command::new(meridian_tests::process::master_binary())
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}

#[test]
fn bad_federation_configurations_stop_start_up_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let federated = dir.path().join("federated.yaml");
    std::fs::write(&federated, "site:\n  name: london\n  federated: true\n").unwrap();
    let (code, err) = meridian_tests::process::run_to_exit(
        &["--config", federated.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("api.tls"), "{err}");

    let open = dir.path().join("open.yaml");
    std::fs::write(&open, "api:\n  listen: 0.0.0.0:8443\n").unwrap();
    let (code, err) = meridian_tests::process::run_to_exit(
        &["--config", open.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a loopback address"), "{err}");

    let master = dir.path().join("master.yaml");
    std::fs::write(
        &master,
        "sites:\n  - name: london\n    url: https://10.0.0.1:8443\n",
    )
    .unwrap();
    let err = master_refuses(&master);
    assert!(err.contains("key `tls`"), "{err}");

    std::fs::write(
        &master,
        "sites:\n  - name: London\n    url: http://127.0.0.1:1\n",
    )
    .unwrap();
    let err = master_refuses(&master);
    assert!(err.contains("sites[0].name"), "{err}");
}
