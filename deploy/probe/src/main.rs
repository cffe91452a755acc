//! `meridian-probe URL`: exits 0 when `GET URL` (plain `http://host:port/path`) answers 2xx
//! within two seconds, 1 otherwise. The images' `HEALTHCHECK` runs it against the ops
//! listener; it links nothing but std so distroless images stay shell-free.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:9090/health".to_owned());
    match probe(&url) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("meridian-probe: {url}: {why}");
            ExitCode::FAILURE
        }
    }
}

/// One request; the answer's status line decides.
fn probe(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are probed (the ops listener is plain HTTP)")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    // HTTP/1.0 so the server closes the connection after one answer.
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: meridian-probe\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    // The status line fits in the first bytes; the body is not needed.
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("no HTTP status line in {line:?}"))?;
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}
