//! What goes to stdout: text tables, one JSON document, or JSON lines. Only data is
//! written here; diagnostics go to stderr. A closed stdout (`| head`) ends the
//! program quietly instead of panicking.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use serde_json::Value;

/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables and sentences for people.
    Text,
    /// One JSON document (a list is an array, `[]` when empty).
    Json,
    /// One compact JSON value per line.
    Jsonl,
}

/// Writes `text` and a newline to stdout.
pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
        // The reader went away; nobody is left to tell.
        std::process::exit(0);
    }
}

/// One value as `-o json` (pretty) or `-o jsonl` (one line).
pub fn value(format: Format, v: &Value) {
    match format {
        Format::Jsonl => line(&v.to_string()),
        _ => line(&serde_json::to_string_pretty(v).unwrap_or_default()),
    }
}

/// A list as a JSON array (`[]` when empty) or one line per item.
pub fn list(format: Format, items: &[Value]) {
    match format {
        Format::Jsonl => {
            for i in items {
                line(&i.to_string());
            }
        }
        _ => line(&serde_json::to_string_pretty(items).unwrap_or_else(|_| "[]".into())),
    }
}

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset or empty.
pub fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `state` coloured by how it ended, when `color`.
pub fn paint_state(state: &str, color: bool) -> String {
    if !color {
        return state.to_owned();
    }
    let code = match state {
        "COMPLETED" => "32",
        "PARTIALLY_COMPLETED" | "CANCELLING" | "CANCELLED" => "33",
        "FAILED" | "REJECTED" => "31",
        "RUNNING" => "36",
        _ => "0",
    };
    format!("\x1b[{code}m{state}\x1b[0m")
}

/// A text table with aligned columns; `cells` may carry colour codes, which do not
/// count towards the width.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the table; for an empty one, `empty` on stderr and nothing on stdout.
    pub fn print(&self, empty: &str) {
        if self.rows.is_empty() {
            eprintln!("{empty}");
            return;
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(visible_len(c));
                }
            }
        }
        let render = |cells: Vec<&str>| {
            let last = cells.len().saturating_sub(1);
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                s.push_str(c);
                if i < last {
                    let pad = widths[i].saturating_sub(visible_len(c)) + 2;
                    s.push_str(&" ".repeat(pad));
                }
            }
            s.trim_end().to_owned()
        };
        line(&render(self.headers.clone()));
        for r in &self.rows {
            line(&render(r.iter().map(String::as_str).collect()));
        }
    }
}

/// Characters shown, without ANSI colour sequences.
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// `s` as one CSV field (RFC 4180 quoting); a field a spreadsheet would run as a
/// formula gets a leading `'`, as in the master's own export.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `Some(x)` as text, `-` for nothing.
pub fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// How fresh a site's part is: `fresh 0.4s`, `STALE 12s`, or `never heard`.
pub fn freshness(age: Option<f64>, stale: bool) -> String {
    match (age, stale) {
        (None, _) => "never heard".into(),
        (Some(a), false) => format!("fresh {a:.1}s"),
        (Some(a), true) => format!("STALE {a:.0}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
    }

    #[test]
    fn colour_codes_do_not_widen_columns() {
        assert_eq!(visible_len(&paint_state("FAILED", true)), 6);
    }
}
