//! Slow clients cannot hold a listener: sockets that send their request head one
//! byte per second are closed after the head timeout while other clients are served
//! promptly, and a body trickled past the body time bound ends the connection. Run
//! against a site and the master, which serve through the same bounded server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meridian_master::{MasterConfig, MasterServer, certs};
use meridian_tests::Backend;
use meridian_tests::site::TestSite;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const SLOW_SOCKETS: usize = 64;

/// Opens [`SLOW_SOCKETS`] sockets that trickle a request head; checks that `/health`
/// answers promptly meanwhile and that every slow socket is closed by the server
/// within `head_timeout` plus slack.
async fn slowloris(addr: SocketAddr, head_timeout: Duration) {
    let head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut slow = Vec::new();
    for _ in 0..SLOW_SOCKETS {
        let mut s = TcpStream::connect(addr).await.unwrap();
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            for b in head {
                if s.write_all(&[*b]).await.is_err() {
                    return started.elapsed();
                }
                let mut buf = [0u8; 256];
                // A read that ends (EOF or reset) means the server closed the socket.
                match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                    Ok(Ok(_)) => panic!("a slow head was answered"),
                    Err(_) => {}
                }
            }
            panic!("the whole head was trickled without the server closing the socket");
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..10 {
        let t = Instant::now();
        let r = client
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .expect("served during the slowloris");
        assert_eq!(r.status(), 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "a normal request took {:?} during the slowloris",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for s in slow {
        let held = s.await.unwrap();
        assert!(
            held <= head_timeout + Duration::from_secs(2),
            "a slow socket was held {held:?}"
        );
    }
}

/// A body promised by Content-Length and trickled is cut off after the body bound.
async fn slow_body(addr: SocketAddr, path: &str, bound: Duration) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    loop {
        let _ = s.write_all(b" ").await;
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        assert!(
            started.elapsed() < bound + Duration::from_secs(4),
            "the slow body was still being read after {:?}",
            started.elapsed()
        );
    }
    let answer = String::from_utf8_lossy(&got);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "unexpected answer: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_survives_slowloris_and_cuts_off_slow_bodies() {
    let site = TestSite::start(
        Backend::Sqlite,
        "api:\n  header_read_timeout_seconds: 2\n  body_read_timeout_seconds: 2\n",
    )
    .await;
    let addr: SocketAddr = site.base.trim_start_matches("http://").parse().unwrap();
    slowloris(addr, Duration::from_secs(2)).await;
    slow_body(addr, "/start_job", Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_survives_slowloris_and_cuts_off_slow_bodies() {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let c = certs::init(&dir.path().join("certs"), &["london".into()]).unwrap();
    let path = dir.path().join("master.yaml");
    std::fs::write(
        &path,
        format!(
            "master:\n  listen: 127.0.0.1:0\n  data_dir: {}\n  header_read_timeout_seconds: 2\n  body_read_timeout_seconds: 2\nauth:\n  algorithm: ES256\n  issuer: meridian\n  audience: meridian-api\n  public_key_file: {}\n",
            dir.path().join("data").display(),
            c.jwt_public().display()
        ),
    )
    .unwrap();
    let cfg = MasterConfig::load(Some(&path), &[]).unwrap();
    let server = MasterServer::build(cfg).await.unwrap();
    let addr = server.local_addr();
    let stop = CancellationToken::new();
    let run = tokio::spawn(server.run(stop.clone()));
    slowloris(addr, Duration::from_secs(2)).await;
    slow_body(addr, "/api/v1/jobs", Duration::from_secs(2)).await;
    stop.cancel();
    run.await.unwrap().unwrap();
}
