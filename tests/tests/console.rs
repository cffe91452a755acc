//! The ops console in a real browser: headless Chromium driven over WebDriver (the
//! distribution's chromedriver, started here) against a real federation — a
//! `meridian-master` and the sites london and tokyo as processes over mutual TLS.
//! Sign-in, sites, a job across two sites to COMPLETED, findings filtered and
//! exported, bulk cancel with typed confirmation, a site stopped and shown
//! unreachable everywhere then back, a viewer who sees no create or cancel and is
//! refused by the server anyway, deep links, security headers, and axe-core (vendored)
//! on every view in both themes. Screenshots go to target/console-screenshots/.

#[path = "console/driver.rs"]
mod driver;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use driver::{Driver, Session};
use meridian_master::auth::Role;
use meridian_tests::corpus;
use meridian_tests::mesh::Mesh;
use serde_json::{Value, json};

fn filesystem(id: &str, root: &Path) -> String {
    format!(
        "  - id: {id}\n    kind: filesystem\n    root: {}\n    include: [\"**/*\"]\n",
        root.display()
    )
}

fn synthetic(id: &str, objects: u64, work_ms: u64) -> String {
    format!(
        "  - id: {id}\n    kind: synthetic\n    objects: {objects}\n    work_ms: {work_ms}\n    fail_permanently_every: 0\n"
    )
}

fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn federation(data: &Path) -> Mesh {
    let lc = corpus::generate(&data.join("london"), 31, 8, 30);
    let tc = corpus::generate(&data.join("tokyo"), 32, 8, 30);
    let mut mesh = Mesh::new(&["london", "tokyo"]);
    let london = format!(
        "{}{}",
        filesystem("ds_london_01", &lc.root),
        synthetic("ds_london_slow", 3000, 300)
    );
    let tokyo = format!(
        "{}{}",
        filesystem("ds_tokyo_01", &tc.root),
        synthetic("ds_tokyo_slow", 3000, 300)
    );
    mesh.configure_site("london", &london, "");
    mesh.configure_site("tokyo", &tokyo, "");
    mesh.start_site("london").await;
    mesh.start_site("tokyo").await;
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    mesh.wait_catalog(4).await;
    mesh
}

/// axe-core, injected into the page; the serious and critical violations.
async fn axe(s: &Session, view: &str) -> Vec<String> {
    const AXE: &str = include_str!("../assets/axe-core/axe.min.js");
    s.js(AXE, json!([])).await;
    let v = s
        .js_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document)
               .then(r => done(r.passes.length === 0 ? ['axe checked nothing'] : r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))))
               .catch(e => done(['axe failed: ' + e]));",
            json!([]),
        )
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| format!("{view}: {}", x.as_str().unwrap_or_default()))
        .collect()
}

/// Runs axe on the current view in both themes and saves a screenshot of each.
async fn check_view(s: &Session, name: &str, failures: &mut Vec<String>) {
    for theme in ["light", "dark"] {
        s.js(
            "if (document.documentElement.dataset.theme !== arguments[0]) document.getElementById('theme').click();",
            json!([theme]),
        )
        .await;
        s.wait_for(
            &format!("document.documentElement.dataset.theme === '{theme}'"),
            "theme",
        )
        .await;
        s.screenshot(&shots().join(format!("{name}-{theme}.png")))
            .await;
        failures.extend(axe(s, &format!("{name} ({theme})")).await);
    }
    s.js("if (document.documentElement.dataset.theme !== 'light') document.getElementById('theme').click();", json!([])).await;
}

async fn sign_in(s: &Session, base: &str, token: &str) {
    s.goto(&format!("{base}/")).await;
    s.wait_for("document.getElementById('token')", "the sign-in form")
        .await;
    s.type_into("#token", token).await;
    s.click("#signin-submit").await;
    s.wait_for("!document.getElementById('nav').hidden", "signed in")
        .await;
}

/// Rows of the job table with their data-job ids.
async fn job_rows(s: &Session) -> Vec<String> {
    let v = s.js("return [...document.querySelectorAll('#jobs-body tr[data-job]')].map(r => r.dataset.job);", json!([])).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

async fn create(mesh: &Mesh, name: &str, sources: &[&str]) -> String {
    mesh.create_job(&json!({"name": name, "data_sources": sources}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser() {
    driver::require_browser();
    let data = tempfile::tempdir().unwrap();
    let mut mesh = federation(data.path()).await;
    let base = mesh.master_url();
    let browser = Driver::start(&mesh.path().join("chromedriver.log")).await;
    let s = browser
        .session(&data.path().join("profile-op"), 1366, 900)
        .await;
    let mut axe_failures = Vec::new();

    // An earlier run of the definition the browser will create, to compare with.
    let earlier = create(&mesh, "console scan", &["ds_london_01"]).await;
    mesh.wait_view(&earlier, Duration::from_secs(60), |v| {
        v["state"] == "COMPLETED"
    })
    .await;

    // Sign in (the test master offers no dev token: it is not the quickstart).
    s.goto(&format!("{base}/")).await;
    s.wait_for("document.getElementById('token')", "sign-in")
        .await;
    assert!(
        s.js(
            "return !document.getElementById('use-dev-token')",
            json!([])
        )
        .await
            == true
    );
    check_view(&s, "signin", &mut axe_failures).await;
    let op = mesh.token(Role::Operator);
    s.type_into("#token", "not-a-token").await;
    s.click("#signin-submit").await;
    s.wait_for(
        "document.querySelector('#signin-msg .error')",
        "a refused token",
    )
    .await;
    let shown = s.text("#signin-msg").await;
    assert!(
        shown.contains("refused") && !shown.contains("not-a-token"),
        "{shown}"
    );
    sign_in(&s, &base, &op).await;
    // The token is in sessionStorage, never in the address.
    assert!(!s.url().await.contains(&op));
    assert_eq!(
        s.js("return sessionStorage.getItem('meridian.token')", json!([]))
            .await,
        json!(op)
    );

    // Who am I.
    s.click("#me").await;
    s.wait_for("document.getElementById('whoami').open", "who am I")
        .await;
    assert!(s.text("#who-perms").await.contains("jobs:create"));
    s.screenshot(&shots().join("whoami.png")).await;
    s.js("document.getElementById('whoami').close()", json!([]))
        .await;

    // Sites first: both reachable, certificate expiry and data sources shown.
    s.goto(&format!("{base}/#/sites")).await;
    s.wait_for(
        "document.querySelectorAll('#sites-grid .card[data-state=\"st-ok\"]').length === 2",
        "two healthy sites",
    )
    .await;
    let grid = s.text("#sites-grid").await;
    assert!(
        grid.contains("ds_tokyo_slow")
            && grid.contains("Certificate expires")
            && grid.contains("Reachable"),
        "{grid}"
    );
    check_view(&s, "sites", &mut axe_failures).await;

    // New job: the server's validation error next to its field, then a job over two sites.
    s.goto(&format!("{base}/#/new")).await;
    s.wait_for(
        "document.querySelector('[data-ds=\"ds_tokyo_01\"]')",
        "the catalog",
    )
    .await;
    check_view(&s, "new-job", &mut axe_failures).await;
    s.click("[data-ds=\"ds_london_01\"]").await;
    s.click("#nj-submit").await;
    s.wait_for(
        "document.getElementById('err-name').textContent.length > 0",
        "the name's error",
    )
    .await;
    assert!(s.text("#err-name").await.contains("name"));
    s.type_into("#nj-name", "console scan").await;
    s.type_into("#nj-priority", "500").await;
    s.click("[data-ds=\"ds_tokyo_01\"]").await;
    s.click("#nj-submit").await;
    s.wait_for(
        "document.getElementById('err-priority').textContent.length > 0",
        "the priority's error",
    )
    .await;
    assert!(s.text("#err-priority").await.contains("priority"));
    s.type_into("#nj-priority", "5").await;
    s.click("#nj-submit").await;
    s.wait_for("location.hash.startsWith('#/jobs/')", "the job view")
        .await;
    let job = s.url().await.rsplit('/').next().unwrap().to_owned();

    // Watch it reach COMPLETED with per-site progress, live (the page is not reloaded).
    s.js("document.getElementById('refresh').value = '2'; document.getElementById('refresh').dispatchEvent(new Event('change'))", json!([])).await;
    s.wait_for_within(
        "document.getElementById('job-state').innerText.includes('Completed')",
        "COMPLETED",
        Duration::from_secs(90),
    )
    .await;
    s.wait_for("[...document.querySelectorAll('#site-parts progress')].filter(p => p.value === 1).length === 4", "full progress bars").await;
    assert!(
        s.text("#site-parts").await.contains("london")
            && s.text("#site-parts").await.contains("tokyo")
    );
    s.wait_for(
        "document.querySelectorAll('#findings-body tr[data-finding]').length > 0",
        "findings rows",
    )
    .await;
    check_view(&s, "job", &mut axe_failures).await;

    // Filter findings by a classifier facet (server-side), then export that view.
    let classifier = s.js("return document.querySelector('#facet-classifier option[value]:not([value=\"\"])').value", json!([])).await;
    let classifier = classifier.as_str().unwrap().to_owned();
    s.js("const e = document.getElementById('facet-classifier'); e.value = arguments[0]; e.dispatchEvent(new Event('change'))", json!([classifier])).await;
    s.wait_for(
        &format!("location.hash.includes('fclassifier={classifier}')"),
        "the facet in the address",
    )
    .await;
    s.wait_for(&format!("[...document.querySelectorAll('#findings-body tr[data-finding]')].length > 0 && [...document.querySelectorAll('#findings-body tr[data-finding]')].every(r => r.children[3].innerText === '{classifier}')"), "filtered rows").await;
    s.click("#export-csv").await;
    let rows = s
        .wait_for(
            "document.getElementById('export-msg').dataset.rows",
            "the export",
        )
        .await;
    let csv = mesh
        .http
        .get(format!(
            "{base}/api/v1/jobs/{job}/findings?format=csv&classifier={classifier}"
        ))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected = csv.lines().count() - 1;
    assert_eq!(
        rows.as_str().unwrap(),
        expected.to_string(),
        "exported rows"
    );
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.contains(&format!(",{classifier},"))),
        "{csv}"
    );
    s.screenshot(&shots().join("job-findings-filtered.png"))
        .await;

    // A deep link reopens the same filtered view.
    let deep = s.url().await;
    s.goto("about:blank").await;
    s.goto(&deep).await;
    s.wait_for(&format!("document.getElementById('facet-classifier') && document.getElementById('facet-classifier').value === '{classifier}'"), "the facet restored").await;

    // Compare with the earlier run of the same name.
    s.click("#compare-link").await;
    s.wait_for(
        "document.getElementById('compare-summary')",
        "the comparison",
    )
    .await;
    let cmp = s.text("#comparison").await;
    assert!(
        cmp.contains("new finding") && cmp.contains("london") && cmp.contains("tokyo"),
        "{cmp}"
    );
    check_view(&s, "compare", &mut axe_failures).await;

    // Bulk: cancel two jobs in one action.
    let slow1 = create(&mesh, "slow one", &["ds_tokyo_slow"]).await;
    let slow2 = create(&mesh, "slow two", &["ds_london_slow"]).await;
    s.goto(&format!("{base}/#/jobs?name=slow*")).await;
    s.wait_for(
        "document.querySelectorAll('#jobs-body tr[data-job]').length === 2",
        "two slow jobs",
    )
    .await;
    check_view(&s, "jobs", &mut axe_failures).await;
    s.click("#freeze").await;
    s.click(&format!("[data-select=\"{slow1}\"]")).await;
    s.click(&format!("[data-select=\"{slow2}\"]")).await;
    s.click("#cancel-selected").await;
    s.wait_for(
        "document.getElementById('confirm').open",
        "the confirmation",
    )
    .await;
    assert!(
        s.js(
            "return document.getElementById('confirm-typed').hidden",
            json!([])
        )
        .await
            == true,
        "two jobs need no typed count"
    );
    s.click("#confirm-ok").await;
    s.wait_for(
        "document.querySelectorAll('#bulk-outcomes li[data-outcome=\"cancelled\"]').length === 2",
        "two outcomes",
    )
    .await;
    s.click("#freeze").await;
    for id in [&slow1, &slow2] {
        assert_eq!(mesh.view(id).await["cancel_requested"], true);
    }
    s.screenshot(&shots().join("jobs-bulk-cancelled.png")).await;

    // More than 10 jobs by filter: the count first, then the count typed back.
    for i in 0..11 {
        create(&mesh, &format!("many {i}"), &["ds_tokyo_slow"]).await;
    }
    s.goto(&format!("{base}/#/jobs?name=many*")).await;
    s.wait_for(
        "document.querySelectorAll('#jobs-body tr[data-job]').length === 11",
        "eleven jobs",
    )
    .await;
    s.click("#cancel-matching").await;
    s.wait_for(
        "document.getElementById('confirm').open",
        "the confirmation",
    )
    .await;
    assert!(s.text("#confirm-text").await.contains("11 job"));
    assert!(
        s.js(
            "return document.getElementById('confirm-ok').disabled",
            json!([])
        )
        .await
            == true
    );
    s.type_into("#confirm-input", "11").await;
    s.click("#confirm-ok").await;
    s.wait_for(
        "document.querySelectorAll('#bulk-outcomes li[data-outcome=\"cancelled\"]').length === 11",
        "eleven outcomes",
    )
    .await;

    // A jobs filter lives in the address: open it fresh and get the same view.
    s.goto(&format!("{base}/#/jobs")).await;
    s.wait_for("document.getElementById('f-name')", "the filters")
        .await;
    s.type_into("#f-name", "slow*").await;
    s.click("#filters input[value=\"CANCELLING\"]").await;
    s.click("#filters input[value=\"CANCELLED\"]").await;
    s.click("#f-apply").await;
    s.wait_for(
        "location.hash.includes('name=slow') && location.hash.includes('CANCELLED')",
        "filters in the address",
    )
    .await;
    s.wait_for(
        "document.querySelectorAll('#jobs-body tr[data-job]').length === 2",
        "the filtered list",
    )
    .await;
    let link = s.url().await;
    s.goto("about:blank").await;
    s.goto(&link).await;
    s.wait_for("document.querySelectorAll('#jobs-body tr[data-job]').length === 2 && document.getElementById('f-name').value === 'slow*' && document.querySelector('#filters input[value=\"CANCELLED\"]').checked", "the same filtered view").await;
    let mut rows = job_rows(&s).await;
    rows.sort();
    let mut want = vec![slow1.clone(), slow2.clone()];
    want.sort();
    assert_eq!(rows, want);

    // Stop a site: unreachable and stale everywhere it appears, never healthy.
    mesh.kill_site("tokyo");
    s.goto(&format!("{base}/#/sites")).await;
    s.wait_for_within("document.querySelector('#sites-grid .card[data-site=\"tokyo\"]').dataset.state === 'st-bad'", "tokyo unreachable", Duration::from_secs(30)).await;
    assert!(
        s.text("#sites-grid .card[data-site=\"tokyo\"]")
            .await
            .contains("Unreachable")
    );
    s.screenshot(&shots().join("sites-tokyo-unreachable.png"))
        .await;
    s.goto(&format!("{base}/#/jobs?name=console*")).await;
    s.wait_for(
        "document.querySelectorAll('#jobs-body .pill.st-bad').length > 0",
        "an unreachable pill in the list",
    )
    .await;
    let list = s.text("#jobs-body").await;
    assert!(list.contains("tokyo: Completed · unreachable"), "{list}");
    s.screenshot(&shots().join("jobs-tokyo-unreachable.png"))
        .await;
    s.goto(&format!("{base}/#/jobs/{job}")).await;
    s.wait_for("document.querySelector('#site-parts [data-site=\"tokyo\"]') && document.querySelector('#site-parts [data-site=\"tokyo\"]').dataset.state === 'st-bad'", "tokyo's part unreachable").await;
    let part = s.text("#site-parts [data-site=\"tokyo\"]").await;
    assert!(
        part.contains("unreachable") && part.contains("stale"),
        "{part}"
    );
    assert!(
        s.text("#site-parts [data-site=\"london\"]")
            .await
            .contains("london: Completed")
    );
    s.screenshot(&shots().join("job-tokyo-unreachable.png"))
        .await;
    s.goto(&format!("{base}/#/new")).await;
    s.wait_for(
        "document.querySelector('fieldset[data-site=\"tokyo\"] legend .st-bad')",
        "tokyo unreachable in the form",
    )
    .await;
    mesh.start_site("tokyo").await;
    s.goto(&format!("{base}/#/sites")).await;
    s.wait_for_within("document.querySelector('#sites-grid .card[data-site=\"tokyo\"]').dataset.state === 'st-ok'", "tokyo back", Duration::from_secs(30)).await;

    // The master itself goes away: the page says so, and how old its data is.
    mesh.kill_master();
    s.js("document.getElementById('refresh').value = '2'; document.getElementById('refresh').dispatchEvent(new Event('change'))", json!([])).await;
    s.wait_for(
        "document.querySelector('[data-conn=\"down\"]')",
        "disconnected",
    )
    .await;
    assert!(s.text("#conn").await.contains("data from"));
    s.screenshot(&shots().join("disconnected.png")).await;
    mesh.start_master().await;
    s.wait_for(
        "document.querySelector('[data-conn=\"up\"]')",
        "connected again",
    )
    .await;

    // A narrow screen (a phone) still shows the list.
    s.resize(390, 844).await;
    s.goto(&format!("{base}/#/jobs")).await;
    s.wait_for(
        "document.querySelectorAll('#jobs-body tr[data-job]').length > 0",
        "jobs on a phone",
    )
    .await;
    s.screenshot(&shots().join("jobs-phone.png")).await;
    s.resize(1366, 900).await;

    // Shortcuts.
    s.js("document.activeElement.blur(); document.dispatchEvent(new KeyboardEvent('keydown', {key: '?'}))", json!([])).await;
    s.wait_for("document.getElementById('shortcuts').open", "the shortcuts")
        .await;
    s.screenshot(&shots().join("shortcuts.png")).await;
    s.js("document.getElementById('shortcuts').close()", json!([]))
        .await;

    // Sign out: the token is gone from the tab.
    s.click("#signout").await;
    s.wait_for("document.getElementById('token')", "signed out")
        .await;
    assert_eq!(
        s.js("return sessionStorage.getItem('meridian.token')", json!([]))
            .await,
        Value::Null
    );

    // A viewer: no create, no cancel — and the server refuses them anyway.
    let viewer = mesh.token(Role::Viewer);
    sign_in(&s, &base, &viewer).await;
    s.goto(&format!("{base}/#/jobs")).await;
    s.wait_for(
        "document.querySelectorAll('#jobs-body tr[data-job]').length > 0",
        "jobs as a viewer",
    )
    .await;
    let hidden = s
        .js("return !document.getElementById('new-job') && !document.getElementById('cancel-selected') && !document.getElementById('cancel-matching') && document.querySelector('[data-nav=\"new\"]').hidden", json!([]))
        .await;
    assert_eq!(hidden, true, "a viewer sees create or cancel");
    s.goto(&format!("{base}/#/jobs/{slow1}")).await;
    s.wait_for("document.getElementById('job-state')", "a job as a viewer")
        .await;
    assert_eq!(
        s.js("return !document.getElementById('cancel-job')", json!([]))
            .await,
        true
    );
    let refused = s
        .js_async(
            "const done = arguments[arguments.length - 1];
             const t = sessionStorage.getItem('meridian.token');
             const h = { Authorization: 'Bearer ' + t, 'Content-Type': 'application/json' };
             Promise.all([
               fetch('/api/v1/jobs', { method: 'POST', headers: h, body: JSON.stringify({ name: 'x', data_sources: ['ds_london_01'] }) }),
               fetch('/api/v1/jobs/cancel', { method: 'POST', headers: h, body: JSON.stringify({ ids: [arguments[0]] }) }),
               fetch('/api/v1/jobs/' + arguments[0] + '/cancel', { method: 'POST', headers: h }),
             ]).then(rs => done(rs.map(r => r.status)));",
            json!([slow1]),
        )
        .await;
    assert_eq!(refused, json!([403, 403, 403]));
    s.screenshot(&shots().join("viewer-jobs.png")).await;

    // No script error and no CSP violation on any page.
    let logs: Vec<String> = s
        .severe_logs()
        .await
        .into_iter()
        .filter(|l| !l.contains("/console/dev-token") && !l.contains("Failed to load resource"))
        .collect();
    assert!(logs.is_empty(), "browser errors: {logs:#?}");
    assert!(
        axe_failures.is_empty(),
        "accessibility violations:\n{}",
        axe_failures.join("\n")
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_with_strict_headers_and_cacheable_files() {
    let mut mesh = Mesh::new(&[]);
    mesh.configure_master("", &BTreeMap::new());
    mesh.start_master().await;
    let base = mesh.master_url();
    let page = mesh.http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    let start = html.find("/console/").unwrap();
    let js = &html[start..start + html[start..].find('"').unwrap()];
    let js = js.replace("favicon.svg", "js/app.js");
    let asset = mesh.http.get(format!("{base}{js}")).send().await.unwrap();
    assert_eq!(asset.status(), 200, "{js}");
    assert!(
        asset.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert!(asset.headers()["content-security-policy"].to_str().is_ok());
    let etag = asset.headers()["etag"].clone();
    let again = mesh
        .http
        .get(format!("{base}{js}"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Another version's files are not served (an old page must reload, not mix).
    let stale = mesh
        .http
        .get(format!("{base}/console/0000000000000000/js/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 404);
    // A master that is not the quickstart offers no token.
    let offer = mesh
        .http
        .get(format!("{base}/console/dev-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(offer.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_offers_its_token_to_the_console_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let port = meridian_tests::process::free_port();
    let mut qs = meridian_tests::mesh::Proc::spawn(
        &meridian_tests::process::quickstart_binary(),
        &[
            "--dir",
            &dir.path().display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[],
        &dir.path().join("quickstart.log"),
    );
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/console/dev-token");
    let mut answer = None;
    for _ in 0..600 {
        if let Ok(r) = http.get(&url).send().await {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = answer.unwrap_or_else(|| panic!("quickstart never answered: {}", qs.log_text()));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    let token = std::fs::read_to_string(dir.path().join("token")).unwrap();
    assert_eq!(body["token"], json!(token));
    qs.kill();
}
