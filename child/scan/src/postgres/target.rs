//! Reads a `postgres` data source's URL into a connection target: the client's
//! settings, the TLS mode and the password's forms to redact. The URL is read as the
//! connector always has: libpq's `PG*` environment variables give the defaults, the
//! URL's own parts and parameters override them, and `~/.pgpass` (or `PGPASSFILE`)
//! supplies a password the URL lacks.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// How the connection is protected; libpq's `sslmode` values. `allow` is read as
/// `disable`, as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A certificate or key: a file, or PEM text given inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pem {
    File(PathBuf),
    Inline(Vec<u8>),
}

impl Pem {
    /// Inline when the value is a PEM certificate itself, a path otherwise.
    fn from_value(v: &str) -> Pem {
        if v.trim_start().starts_with("-----BEGIN CERTIFICATE-----") {
            Pem::Inline(v.as_bytes().to_vec())
        } else {
            Pem::File(PathBuf::from(v))
        }
    }

    pub(super) async fn bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::Inline(b) => Ok(b.clone()),
            Pem::File(p) => tokio::fs::read(p)
                .await
                .map_err(|e| format!("cannot read {}: {e}", p.display())),
        }
    }
}

/// What the TLS layer needs besides the client's settings.
#[derive(Debug, Clone)]
pub(super) struct Tls {
    pub mode: SslMode,
    pub root_cert: Option<Pem>,
    pub client_cert: Option<Pem>,
    pub client_key: Option<Pem>,
}

pub(super) struct Target {
    pub config: tokio_postgres::Config,
    pub tls: Tls,
    /// The password as written in the URL and as sent, to cut from error messages.
    pub secrets: Vec<String>,
}

/// Every setting before it is handed to the client: the libpq defaults, then the URL.
struct Options {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    tls: Tls,
    options: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Options {
    fn from_env() -> Options {
        let port = env("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432);
        Options {
            host: env("PGHOSTADDR")
                .or_else(|| env("PGHOST"))
                .unwrap_or_else(|| default_host(port)),
            port,
            user: env("PGUSER"),
            password: env("PGPASSWORD"),
            database: env("PGDATABASE"),
            tls: Tls {
                mode: env("PGSSLMODE")
                    .and_then(|m| ssl_mode(&m))
                    .unwrap_or(SslMode::Prefer),
                root_cert: env("PGSSLROOTCERT").map(|v| Pem::from_value(&v)),
                client_cert: env("PGSSLCERT").map(|v| Pem::from_value(&v)),
                client_key: env("PGSSLKEY").map(|v| Pem::from_value(&v)),
            },
            options: env("PGOPTIONS"),
        }
    }

    fn push_option(&mut self, key: &str, value: &str) {
        let o = self.options.get_or_insert_with(String::new);
        if !o.is_empty() {
            o.push(' ');
        }
        o.push_str("-c ");
        for c in format!("{key}={value}").chars() {
            if matches!(c, ' ' | '\\') {
                o.push('\\');
            }
            o.push(c);
        }
    }

    /// One query parameter; `Err` for a value that cannot be read. Unknown keys are
    /// ignored with a warning that names the key only (a value may be a secret).
    fn param(&mut self, key: &str, value: &str) -> Result<(), ()> {
        match key {
            "sslmode" | "ssl-mode" => self.tls.mode = ssl_mode(value).ok_or(())?,
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" => {
                self.tls.root_cert = Some(Pem::from_value(value));
            }
            "sslcert" | "ssl-cert" => self.tls.client_cert = Some(Pem::from_value(value)),
            "sslkey" | "ssl-key" => self.tls.client_key = Some(Pem::from_value(value)),
            // A setting of the previous driver's statement cache: still validated.
            "statement-cache-capacity" => {
                value.parse::<usize>().map_err(|_| ())?;
            }
            "host" => value.clone_into(&mut self.host),
            "hostaddr" => {
                value.parse::<IpAddr>().map_err(|_| ())?;
                value.clone_into(&mut self.host);
            }
            "port" => self.port = value.parse().map_err(|_| ())?,
            "dbname" => self.database = Some(value.to_owned()),
            "user" => self.user = Some(value.to_owned()),
            "password" => self.password = Some(value.to_owned()),
            // The connector names itself whatever the URL says.
            "application_name" => {}
            "options" => {
                let o = self.options.get_or_insert_with(String::new);
                if !o.is_empty() {
                    o.push(' ');
                }
                o.push_str(value);
            }
            k if k.starts_with("options[") && k.ends_with(']') => {
                self.push_option(&k["options[".len()..k.len() - 1], value);
            }
            k => tracing::warn!(key = %k, "ignoring an unrecognized connection parameter"),
        }
        Ok(())
    }
}

fn ssl_mode(s: &str) -> Option<SslMode> {
    Some(match &*s.to_ascii_lowercase() {
        "disable" | "allow" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        _ => return None,
    })
}

/// The server's Unix socket directory when one of the usual ones has it, else
/// `localhost`.
fn default_host(port: u16) -> String {
    let socket = format!(".s.PGSQL.{port}");
    ["/var/run/postgresql", "/private/tmp", "/tmp"]
        .into_iter()
        .find(|dir| Path::new(dir).join(&socket).exists())
        .unwrap_or("localhost")
        .to_owned()
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn decode(s: &str) -> Result<String, ()> {
    String::from_utf8(percent_decode(s)).map_err(|_| ())
}

/// Reads `url` (`scheme://[user[:password]@][host][:port][/database][?k=v&…]`);
/// `Err` when it cannot be read, with no detail (the detail may quote the secret).
pub(super) fn parse(url: &str) -> Result<Target, ()> {
    let (scheme, rest) = url.split_once("://").ok_or(())?;
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };

    let mut o = Options::from_env();
    let mut secrets = Vec::new();
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6.split_once(']').ok_or(())?;
            (h, p.strip_prefix(':'))
        }
        None => match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if !host.is_empty() {
        let decoded = decode(host)?;
        o.host = if decoded.starts_with('/') {
            decoded
        } else {
            host.to_owned()
        };
    }
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        o.port = p.parse().map_err(|_| ())?;
    }
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            o.user = Some(decode(user)?);
        }
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            secrets.push(p.to_owned());
            o.password = Some(decode(p)?);
        }
    }
    let database = path.trim_start_matches('/');
    if !database.is_empty() {
        o.database = Some(decode(database)?);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let form =
            |s: &str| String::from_utf8_lossy(&percent_decode(&s.replace('+', " "))).into_owned();
        o.param(&form(k), &form(v))?;
    }
    if o.password.is_none() {
        let user = o.user.clone().or_else(|| env("USER")).unwrap_or_default();
        o.password = pgpass(&o.host, o.port, &user, o.database.as_deref());
    }
    if let Some(p) = &o.password {
        secrets.push(p.clone());
    }

    let mut config = tokio_postgres::Config::new();
    if o.host.starts_with('/') {
        config.host_path(&o.host);
    } else {
        config.host(&o.host);
    }
    config.port(o.port);
    if let Some(u) = &o.user {
        config.user(u);
    }
    if let Some(p) = &o.password {
        config.password(p);
    }
    if let Some(d) = &o.database {
        config.dbname(d);
    }
    if let Some(opts) = &o.options {
        config.options(opts);
    }
    config.application_name("meridian-scan");
    // A server that accepts the connection and then says nothing must not hold a
    // worker: the connection attempt and idle sockets are bounded in time.
    config.connect_timeout(std::time::Duration::from_secs(15));
    config.tcp_user_timeout(std::time::Duration::from_secs(60));
    config.ssl_mode(match o.tls.mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    secrets.retain(|s| !s.is_empty());
    Ok(Target {
        config,
        tls: o.tls,
        secrets,
    })
}

/// The password of the first `host:port:database:user:password` line that matches,
/// from `PGPASSFILE` or `~/.pgpass`; a file others can read is ignored, as libpq does.
fn pgpass(host: &str, port: u16, user: &str, database: Option<&str>) -> Option<String> {
    let files = [
        env("PGPASSFILE").map(PathBuf::from),
        env("HOME").map(|h| Path::new(&h).join(".pgpass")),
    ];
    let want = [host, &port.to_string(), database.unwrap_or_default(), user].map(str::to_owned);
    files.into_iter().flatten().find_map(|path| {
        let file = std::fs::File::open(&path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if file.metadata().ok()?.permissions().mode() & 0o77 != 0 {
                tracing::warn!(path = %path.display(), "ignoring a password file others can read");
                return None;
            }
        }
        let text = std::io::read_to_string(file).ok()?;
        text.lines().find_map(|line| pgpass_line(line, &want))
    })
}

fn pgpass_line(line: &str, want: &[String; 4]) -> Option<String> {
    if line.trim_end().is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields: Vec<String> = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut()?.extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    if fields.len() != 5 {
        return None;
    }
    let matches = fields.iter().zip(want).all(|(f, w)| f == "*" || f == w);
    matches.then(|| fields.pop().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parts_and_parameters() {
        let t = parse(
            "postgres://scan:p%40ss@db.internal:6543/crm?sslmode=verify-full&options[geqo]=off",
        )
        .unwrap();
        assert_eq!(t.config.get_user(), Some("scan"));
        assert_eq!(t.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(t.config.get_dbname(), Some("crm"));
        assert_eq!(t.config.get_ports(), &[6543]);
        assert_eq!(
            t.config.get_hosts(),
            &[tokio_postgres::config::Host::Tcp("db.internal".into())]
        );
        assert_eq!(t.tls.mode, SslMode::VerifyFull);
        assert!(t.config.get_options().unwrap().ends_with("-c geqo=off"));
        assert_eq!(t.config.get_application_name(), Some("meridian-scan"));
        assert!(t.secrets.contains(&"p%40ss".to_owned()));
        assert!(t.secrets.contains(&"p@ss".to_owned()));
    }

    #[test]
    fn a_password_may_hold_an_at_sign_and_a_host_may_be_a_socket() {
        let t = parse("postgresql://u:a@b@%2Fvar%2Frun%2Fpostgresql/x").unwrap();
        assert_eq!(t.config.get_password(), Some(&b"a@b"[..]));
        assert_eq!(
            t.config.get_hosts(),
            &[tokio_postgres::config::Host::Unix(
                "/var/run/postgresql".into()
            )]
        );
    }

    #[test]
    fn an_ipv6_host_loses_its_brackets() {
        let t = parse("postgres://u@[::1]:5433/x").unwrap();
        assert_eq!(
            t.config.get_hosts(),
            &[tokio_postgres::config::Host::Tcp("::1".into())]
        );
        assert_eq!(t.config.get_ports(), &[5433]);
    }

    #[test]
    fn unreadable_urls_and_values_are_refused() {
        for bad in [
            "not a url",
            "postgres://h:notaport/x",
            "postgres://h/x?sslmode=sometimes",
            "postgres://h/x?hostaddr=nowhere",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("postgres://h/x?unknown=1").is_ok());
    }

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        let want = ["db", "5432", "crm", "scan"].map(str::to_owned);
        assert_eq!(
            pgpass_line("db:*:crm:scan:pa\\:ss", &want),
            Some("pa:ss".into())
        );
        assert_eq!(pgpass_line("*:*:*:*:x", &want), Some("x".into()));
        assert_eq!(pgpass_line("other:*:*:*:x", &want), None);
        assert_eq!(pgpass_line("# db:*:*:*:x", &want), None);
        assert_eq!(pgpass_line("db:*:*", &want), None);
    }
}
