//! `jobs watch`: follows a job until it reaches a final state. On a terminal (text
//! output) one bar per site plus a totals bar, redrawn in place; otherwise plain
//! lines appended when something changes, JSON lines of each changed view
//! (`-o jsonl`) or the final view only (`-o json`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::api::{self, JobView, SiteView};
use crate::cli::WatchArgs;
use crate::client::Master;
use crate::exit::{self, CliError};
use crate::output::{self, Format, freshness, paint_state};

/// How long the master may fail to answer before a watch gives up on it.
const MASTER_GRACE: Duration = Duration::from_secs(30);

/// Positions of a bar: progress in thousandths.
const BAR_LEN: u64 = 1000;

pub async fn watch(m: &Master, fmt: Format, a: WatchArgs) -> Result<u8, CliError> {
    let start = Instant::now();
    let mut screen = match fmt {
        Format::Text if std::io::stdout().is_terminal() => Screen::Bars(None),
        Format::Text => Screen::Lines(BTreeMap::new()),
        Format::Jsonl => Screen::Changes(None),
        Format::Json => Screen::FinalOnly,
    };
    let mut last: Option<(Value, JobView)> = None;
    let mut failing_since: Option<Instant> = None;
    loop {
        match api::job_view_raw(m, &a.job).await {
            Ok((raw, view)) => {
                failing_since = None;
                screen.update(&raw, &view, start.elapsed());
                if exit::is_final(&view.state) {
                    screen.finish(&raw, &view, start.elapsed());
                    return Ok(exit::for_state(&view.state, view.site_unreachable()));
                }
                last = Some((raw, view));
            }
            // The master restarting or briefly away is not the job's fault.
            Err(e) if transient(&e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                screen.note(&format!("meridianctl: {e}; retrying"));
                if since.elapsed() >= MASTER_GRACE {
                    screen.abandon();
                    return Err(e);
                }
            }
            Err(e) => {
                screen.abandon();
                return Err(e);
            }
        }
        let mut wait = a.interval;
        if let Some(t) = a.timeout {
            let left = t.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Ok(timed_out(&mut screen, last, &a, start.elapsed()));
            }
            wait = wait.min(left);
        }
        tokio::time::sleep(wait).await;
    }
}

fn transient(e: &CliError) -> bool {
    match e {
        CliError::Unreachable { .. } => true,
        CliError::Api(f) => f.status >= 500,
        _ => false,
    }
}

fn timed_out(
    screen: &mut Screen,
    last: Option<(Value, JobView)>,
    a: &WatchArgs,
    elapsed: Duration,
) -> u8 {
    let Some((raw, view)) = last else {
        screen.abandon();
        eprintln!(
            "meridianctl: timed out after {:.0?} without an answer about job {}",
            elapsed, a.job
        );
        return exit::TIMEOUT;
    };
    screen.finish(&raw, &view, elapsed);
    let unreachable: Vec<&str> = view
        .sites
        .iter()
        .filter(|s| s.site_reachability == "UNREACHABLE")
        .map(|s| s.site.as_str())
        .collect();
    if unreachable.is_empty() {
        eprintln!(
            "meridianctl: timed out after {elapsed:.0?}; job {} is still {}",
            view.job_id, view.state
        );
        exit::TIMEOUT
    } else {
        eprintln!(
            "meridianctl: timed out after {elapsed:.0?}; job {} is still {} and site(s) {} unreachable",
            view.job_id,
            view.state,
            unreachable.join(", ")
        );
        exit::SITE_UNREACHABLE
    }
}

/// One site's line without the bar: state, objects, findings, freshness.
fn site_message(s: &SiteView, color: bool) -> String {
    let mut msg = format!(
        "{} obj {}/{} find {} {}",
        paint_state(&s.state, color),
        s.objects.processed,
        s.objects.discovered,
        s.findings.total,
        freshness(s.status_age_seconds, s.stale)
    );
    if s.site_reachability == "UNREACHABLE" {
        msg.push_str(" UNREACHABLE");
    }
    msg
}

fn total_message(v: &JobView, color: bool) -> String {
    let stale: Vec<&str> = v
        .sites
        .iter()
        .filter(|s| s.stale)
        .map(|s| s.site.as_str())
        .collect();
    format!(
        "{} obj {}/{} find {} {}",
        paint_state(&v.state, color),
        v.objects.processed,
        v.objects.discovered,
        v.findings.total,
        if stale.is_empty() {
            "all fresh".to_owned()
        } else {
            format!("stale: {}", stale.join(","))
        }
    )
}

/// Terminal tasks over all tasks of every site.
fn total_progress(v: &JobView) -> f64 {
    let tasks: i64 = v.sites.iter().map(|s| s.tasks_total).sum();
    if tasks == 0 {
        return 0.0;
    }
    v.sites
        .iter()
        .map(|s| s.progress * s.tasks_total as f64)
        .sum::<f64>()
        / tasks as f64
}

/// What changed enough to be worth a line: everything but the age.
fn change_key(s: &SiteView) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        s.state,
        s.objects.processed,
        s.objects.discovered,
        s.findings.total,
        s.stale,
        s.site_reachability
    )
}

fn view_key(v: &JobView) -> String {
    let sites: Vec<String> = v.sites.iter().map(change_key).collect();
    format!("{}|{}", v.state, sites.join(";"))
}

struct Bars {
    multi: MultiProgress,
    sites: Vec<(String, ProgressBar)>,
    total: ProgressBar,
    color: bool,
}

impl Bars {
    fn new(view: &JobView) -> Bars {
        let color = output::color();
        let template = if color {
            "{prefix:<8.bold} {bar:20.cyan/blue} {percent:>3}% {msg}"
        } else {
            "{prefix:<8} {bar:20} {percent:>3}% {msg}"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("#>-");
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let bar = |name: &str| {
            let b = multi.add(ProgressBar::new(BAR_LEN));
            b.set_style(style.clone());
            b.set_prefix(name.to_owned());
            b
        };
        let sites = view
            .sites
            .iter()
            .map(|s| (s.site.clone(), bar(&s.site)))
            .collect();
        let total = bar("TOTAL");
        Bars {
            multi,
            sites,
            total,
            color,
        }
    }

    fn draw(&self, v: &JobView) {
        for (name, bar) in &self.sites {
            if let Some(s) = v.sites.iter().find(|s| &s.site == name) {
                bar.set_message(site_message(s, self.color));
                bar.set_position((s.progress * BAR_LEN as f64) as u64);
            }
        }
        self.total.set_message(total_message(v, self.color));
        self.total
            .set_position((total_progress(v) * BAR_LEN as f64) as u64);
    }

    fn abandon(&self) {
        for (_, b) in &self.sites {
            b.abandon();
        }
        self.total.abandon();
    }
}

enum Screen {
    /// Created on the first view, when the sites are known.
    Bars(Option<Bars>),
    /// Each site's last printed change key.
    Lines(BTreeMap<String, String>),
    /// The last printed view's change key.
    Changes(Option<String>),
    FinalOnly,
}

impl Screen {
    fn update(&mut self, raw: &Value, v: &JobView, elapsed: Duration) {
        match self {
            Screen::Bars(bars) => bars.get_or_insert_with(|| Bars::new(v)).draw(v),
            Screen::Lines(seen) => {
                let mut changed = false;
                for s in &v.sites {
                    let key = change_key(s);
                    if seen.get(&s.site) != Some(&key) {
                        output::line(&format!(
                            "[{:>6.1}s] {:<8} {}",
                            elapsed.as_secs_f64(),
                            s.site,
                            site_message(s, false)
                        ));
                        seen.insert(s.site.clone(), key);
                        changed = true;
                    }
                }
                let key = format!("{}|{}", v.state, v.findings.total);
                if changed || seen.get("\u{0}total") != Some(&key) {
                    output::line(&format!(
                        "[{:>6.1}s] {:<8} {}",
                        elapsed.as_secs_f64(),
                        "TOTAL",
                        total_message(v, false)
                    ));
                    seen.insert("\u{0}total".into(), key);
                }
            }
            Screen::Changes(last) => {
                let key = view_key(v);
                if last.as_ref() != Some(&key) {
                    output::line(&raw.to_string());
                    *last = Some(key);
                }
            }
            Screen::FinalOnly => {}
        }
    }

    /// The watch is over (final state or timeout): leave the last view on screen.
    fn finish(&mut self, raw: &Value, v: &JobView, elapsed: Duration) {
        match self {
            Screen::Bars(bars) => {
                if let Some(b) = bars {
                    b.draw(v);
                    b.abandon();
                }
                output::line(&format!(
                    "job {} {} after {:.1}s",
                    v.job_id,
                    paint_state(&v.state, output::color()),
                    elapsed.as_secs_f64()
                ));
            }
            Screen::Lines(_) => output::line(&format!(
                "job {} {} after {:.1}s",
                v.job_id,
                v.state,
                elapsed.as_secs_f64()
            )),
            Screen::Changes(_) => {}
            Screen::FinalOnly => output::value(Format::Json, raw),
        }
    }

    /// A diagnostic on stderr, above the bars when they are drawn.
    fn note(&self, msg: &str) {
        match self {
            Screen::Bars(Some(b)) => b.multi.suspend(|| eprintln!("{msg}")),
            _ => eprintln!("{msg}"),
        }
    }

    fn abandon(&mut self) {
        if let Screen::Bars(Some(b)) = self {
            b.abandon();
        }
    }
}
