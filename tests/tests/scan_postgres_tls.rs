//! The `postgres` connector's `sslmode`s against a real PostgreSQL server that accepts
//! only TLS over TCP: which modes connect, which certificates each one accepts, and
//! client certificates; plain connections still work over the Unix socket.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use meridian_master::certs::Ca;
use meridian_scan::settings::PostgresSource;
use meridian_tests::pg::{Cluster, ClusterOptions};

/// Tables the source lists, or the connector's error.
fn discover(url: &str) -> Result<usize, String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let src: PostgresSource =
        serde_json::from_value(serde_json::json!({ "id": "tls", "url": url })).unwrap();
    let handle = rt.handle().clone();
    // The connector runs on a blocking thread and enters the runtime through `handle`.
    std::thread::spawn(move || {
        let mut n = 0;
        let mut sink = |batch: Vec<_>| {
            n += batch.len();
            true
        };
        meridian_scan::postgres::discover(&src, &handle, 10, &mut sink, &AtomicBool::new(false))
            .map(|()| n)
            .map_err(|e| e.to_string())
    })
    .join()
    .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn every_sslmode_connects_and_verifies_as_libpq_does() {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("data source test CA").unwrap();
    // Valid for `db.test`, `localhost` and 127.0.0.1, not for 127.0.0.2.
    let (server_cert, server_key) = ca.leaf("db.test").unwrap();
    let (client_cert, client_key) = ca.leaf("certuser").unwrap();
    let ca_file = write(dir.path(), "ca.pem", ca.pem());
    let cert_file = write(dir.path(), "server.pem", &server_cert);
    let key_file = write(dir.path(), "server.key", &server_key);
    let client_cert_file = write(dir.path(), "client.pem", &client_cert);
    let client_key_file = write(dir.path(), "client.key", &client_key);
    let hba = write(
        dir.path(),
        "pg_hba.conf",
        "local all all trust\n\
         hostssl all certuser 127.0.0.0/8 cert\n\
         hostssl all all 127.0.0.0/8 trust\n\
         hostnossl all all 0.0.0.0/0 reject\n",
    );
    // The server reads its key only if it owns it and no one else can.
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if as_root {
        assert!(
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success()
        );
    }
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let extra = format!(
        "-c listen_addresses=127.0.0.1,127.0.0.2 -c ssl=on -c ssl_cert_file={cert_file} \
         -c ssl_key_file={key_file} -c ssl_ca_file={ca_file} -c hba_file={hba}"
    );
    let cluster = Cluster::start(ClusterOptions {
        durable: false,
        extra: Box::leak(extra.into_boxed_str()),
    });
    let port = cluster
        .url
        .rsplit_once(':')
        .and_then(|(_, p)| p.split_once('/'))
        .unwrap()
        .0
        .to_owned();
    let socket = cluster.data_dir.to_string_lossy().replace('/', "%2F");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=require");
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        for sql in [
            "CREATE ROLE certuser LOGIN",
            "CREATE TABLE public.t (a text)",
            "GRANT SELECT ON public.t TO certuser",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    });

    let at = |user: &str, host: &str, query: &str| {
        format!("postgres://{user}@{host}:{port}/postgres?{query}")
    };
    let pg = |host: &str, query: &str| at("postgres", host, query);
    let client = format!("sslcert={client_cert_file}&sslkey={client_key_file}");
    let cases = [
        // The server refuses plain TCP: these modes never try TLS.
        (pg("127.0.0.1", "sslmode=disable"), false),
        (pg("127.0.0.1", "sslmode=allow"), false),
        // `prefer` (the default) and `require` encrypt and check no certificate.
        (pg("127.0.0.1", ""), true),
        (pg("127.0.0.1", "sslmode=prefer"), true),
        (pg("127.0.0.2", "sslmode=require"), true),
        // `verify-ca`: the chain must reach a root (ours is not a public one)…
        (pg("127.0.0.1", "sslmode=verify-ca"), false),
        (
            pg(
                "127.0.0.2",
                &format!("sslmode=verify-ca&sslrootcert={ca_file}"),
            ),
            true,
        ),
        // …and `verify-full` also the name.
        (
            pg(
                "127.0.0.2",
                &format!("sslmode=verify-full&sslrootcert={ca_file}"),
            ),
            false,
        ),
        (
            pg(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca_file}"),
            ),
            true,
        ),
        // A client certificate authenticates; it needs its key.
        (at("certuser", "127.0.0.1", "sslmode=require"), false),
        (
            at(
                "certuser",
                "127.0.0.1",
                &format!("sslmode=require&{client}"),
            ),
            true,
        ),
        (
            at(
                "certuser",
                "127.0.0.1",
                &format!("sslcert={client_cert_file}"),
            ),
            false,
        ),
        // The Unix socket has no TLS: `prefer` connects in the clear, `require` cannot.
        (
            format!("postgres://postgres@{socket}:{port}/postgres"),
            true,
        ),
        (
            format!("postgres://postgres@{socket}:{port}/postgres?sslmode=require"),
            false,
        ),
    ];
    let mut wrong = Vec::new();
    for (url, connects) in cases {
        let got = discover(&url);
        if got.is_ok() != connects {
            wrong.push(format!("{url}: {got:?}"));
        }
        if let Ok(tables) = got {
            assert_eq!(tables, 1, "{url}");
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
