//! A small W3C WebDriver client over reqwest, driving the distribution's
//! `chromedriver` with headless Chromium: no driver manager, nothing downloaded.
//! Only the calls the console tests need.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on a free loopback port, killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails the test naming the packages when the browser is missing.
pub fn require_browser() {
    for bin in [CHROMEDRIVER, CHROMIUM] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: install the distribution's chromium and chromium-driver \
             (tests/run.sh does, as root: apt-get install -y chromium chromium-driver)"
        );
    }
}

impl Driver {
    pub async fn start(log: &Path) -> Driver {
        require_browser();
        let port = meridian_tests::process::free_port();
        let log = std::fs::File::create(log).expect("driver log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start chromedriver");
        let d = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        };
        let start = Instant::now();
        loop {
            if let Ok(r) = d.http.get(format!("{}/status", d.url)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return d;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver never became ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless Chromium with a fresh profile in `profile`.
    pub async fn session(&self, profile: &Path, width: u32, height: u32) -> Session {
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let v = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/session", self.url),
            Some(caps),
        )
        .await;
        let id = v["sessionId"].as_str().expect("session id").to_owned();
        Session {
            base: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
        }
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    try_call(http, method.clone(), url, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// One WebDriver command; an error answer as its text.
async fn try_call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("{status} {v}"));
    }
    Ok(v["value"].clone())
}

/// One browser window.
pub struct Session {
    base: String,
    http: reqwest::Client,
}

impl Session {
    async fn post(&self, path: &str, body: Value) -> Value {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}{path}", self.base),
            Some(body),
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}{path}", self.base),
            None,
        )
        .await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) and answers its value.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Runs an async script: the body must call `arguments[arguments.length - 1](value)`.
    pub async fn js_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": args }))
            .await
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT].as_str().expect("element id").to_owned()
    }

    /// Waits until `css` matches a visible element, then clicks it like a user.
    pub async fn click(&self, css: &str) {
        self.wait_for(&format!("document.querySelector({css:?}) && document.querySelector({css:?}).offsetParent !== null && !document.querySelector({css:?}).disabled"), &format!("{css} clickable")).await;
        self.on_element(css, &[("click", json!({}))]).await;
    }

    /// Types `text` into `css` after clearing it.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.wait_for(&format!("document.querySelector({css:?})"), css)
            .await;
        self.on_element(
            css,
            &[("clear", json!({})), ("value", json!({ "text": text }))],
        )
        .await;
    }

    /// Sends `commands` to the element `css` matches. A live refresh may replace the
    /// element between the lookup and a command ("stale element reference"), as it
    /// would under a user's cursor a moment later: look it up again and repeat.
    async fn on_element(&self, css: &str, commands: &[(&str, Value)]) {
        let mut tries = 0;
        'again: loop {
            tries += 1;
            let id = self.find(css).await;
            for (command, body) in commands {
                let url = format!("{}/element/{id}/{command}", self.base);
                match try_call(&self.http, reqwest::Method::POST, &url, Some(body.clone())).await {
                    Ok(_) => {}
                    Err(e) if e.contains("stale element reference") && tries < 5 => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue 'again;
                    }
                    Err(e) => panic!("POST {url}: {e}"),
                }
            }
            return;
        }
    }

    /// The text of the first element matching `css` ("" when none).
    pub async fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Polls the JavaScript expression `cond` until it is truthy (30 s).
    pub async fn wait_for(&self, cond: &str, what: &str) -> Value {
        self.wait_for_within(cond, what, Duration::from_secs(30))
            .await
    }

    pub async fn wait_for_within(&self, cond: &str, what: &str, limit: Duration) -> Value {
        let start = Instant::now();
        let script = format!("try {{ return ({cond}) || null; }} catch (e) {{ return null; }}");
        loop {
            let v = self.js(&script, json!([])).await;
            if !v.is_null() && v != false {
                return v;
            }
            if start.elapsed() > limit {
                let body = self.text("main").await;
                panic!("waited {limit:?} for {what} ({cond}); the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves a PNG screenshot of the window.
    pub async fn screenshot(&self, path: &Path) -> PathBuf {
        let b64 = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot"))
            .expect("base64");
        std::fs::write(path, png).expect("write screenshot");
        path.to_owned()
    }

    /// Severe browser-console entries (script errors, CSP violations).
    pub async fn severe_logs(&self) -> Vec<String> {
        let v = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/se/log", self.base),
            Some(json!({"type": "browser"})),
        )
        .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}
