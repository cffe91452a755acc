//! Tracing set-up: readable text for people, JSON for production log pipelines.
//!
//! Log lines quote text the services do not control (job names, file names from a
//! share, error messages of a peer). A newline inside such a value would start a
//! forged line in a text log, so the text writer escapes every control character
//! inside an event: one event is always exactly one line. JSON lines need no help
//! (the encoder escapes them).

use std::io::{self, IsTerminal, Write};

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter`. Logs go to
/// stderr so that stdout stays free for command output; colours only on a terminal.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let ansi = io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(move || OneLine {
                inner: io::stderr(),
                keep_escape: ansi,
            })
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_writer(io::stderr)
            .try_init(),
    };
    // A second init (tests start several sites in one process) keeps the first one.
    let _ = result;
}

/// A writer that receives one formatted event per write and passes it on as one
/// line: a final newline is kept, every other control character is escaped (ESC
/// too, unless colours are on and the formatter's own escapes must pass).
struct OneLine<W> {
    inner: W,
    keep_escape: bool,
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, newline) = match buf.split_last() {
            Some((b'\n', body)) => (body, true),
            _ => (buf, false),
        };
        let mut out = Vec::with_capacity(buf.len() + 16);
        for &b in body {
            match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.push(b),
                0x1b if self.keep_escape => out.push(b),
                c if c < 0x20 || c == 0x7f => {
                    let _ = write!(out, "\\x{c:02x}");
                }
                _ => out.push(b),
            }
        }
        if newline {
            out.push(b'\n');
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_line(input: &str, keep_escape: bool) -> String {
        let mut w = OneLine {
            inner: Vec::new(),
            keep_escape,
        };
        w.write_all(input.as_bytes()).unwrap();
        String::from_utf8(w.inner).unwrap()
    }

    #[test]
    fn an_event_with_a_newline_inside_stays_one_line() {
        let line = one_line("INFO job created name=a\nERROR forged\r\n", false);
        assert_eq!(line, "INFO job created name=a\\nERROR forged\\r\n");
        assert_eq!(line.lines().count(), 1);
    }

    #[test]
    fn escapes_pass_only_with_colours_on() {
        assert_eq!(one_line("\x1b[1mx\x07\n", true), "\x1b[1mx\\x07\n");
        assert_eq!(one_line("\x1b[1mx\n", false), "\\x1b[1mx\n");
        assert_eq!(one_line("tabs\tstay\n", false), "tabs\tstay\n");
    }
}
