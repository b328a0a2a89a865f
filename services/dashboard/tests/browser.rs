//! The page in headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by deploy/local/test.sh), driven over the W3C WebDriver protocol
//! by the few calls below: sign in, check that the numbers shown equal
//! ClickHouse's, drill down England → region → ICB → PCN → practice, check
//! that an ICB's login can reach no other ICB's figures, and save laptop and
//! phone screenshots in target/test-artifacts/dashboard/.
//! Waits are bounded polls; nothing is timed.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use callpulse_testkit::free_port;
use clickhouse::Row;
use common::*;
use serde::Deserialize;
use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(30);

/// chromedriver, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let exe =
        std::env::var("CALLPULSE_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let port = free_port();
    let child = Command::new(&exe)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("starting {exe}: {err}; install Debian's chromium and chromium-driver (deploy/local/test.sh does)")
        });
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = reqwest::get(format!("{}/status", driver.url)).await {
            if let Ok(status) = response.json::<Value>().await {
                if status["value"]["ready"] == true {
                    return driver;
                }
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One browser session.
struct Browser {
    http: reqwest::Client,
    session: String,
}

impl Browser {
    async fn open(driver: &Driver) -> Browser {
        let http = reqwest::Client::new();
        let binary =
            std::env::var("CALLPULSE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1366,900", "--lang=en-GB"]
            }
        }}});
        let response: Value = http
            .post(format!("{}/session", driver.url))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {response}"))
            .to_string();
        Browser {
            http,
            session: format!("{}/session/{session}", driver.url),
        }
    }

    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        match response["value"].get("error") {
            Some(_) => Err(response["value"].clone()),
            None => Ok(response["value"].clone()),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|err| panic!("WebDriver {path}: {err}"))
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn run(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    async fn run_async(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self
                .http
                .post(format!("{}/element", self.session))
                .json(&json!({ "using": "css selector", "value": css }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            if let Some(id) = found["value"][ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(Instant::now() < deadline, "no element {css}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks like a person. The page redraws its tables on every refresh,
    /// so an element found just before one may be gone: find it again.
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let id = self.find(css).await;
            match self
                .try_call(
                    reqwest::Method::POST,
                    &format!("/element/{id}/click"),
                    Some(json!({})),
                )
                .await
            {
                Ok(_) => return,
                Err(err)
                    if err["error"] == "stale element reference" && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("clicking {css}: {err}"),
            }
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Waits until the page says it has drawn `what` (body[data-loaded]).
    async fn wait_loaded(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let loaded = self.run("return document.body.dataset.loaded || ''").await;
            if loaded == what {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page did not show {what} (it shows {loaded})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : null",
            json!(css)
        );
        self.run(&script)
            .await
            .as_str()
            .unwrap_or_else(|| panic!("nothing at {css}"))
            .to_string()
    }

    /// A full-page screenshot at `width` CSS pixels.
    async fn screenshot(&self, name: &str, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
        let full = self
            .run("return document.documentElement.scrollHeight")
            .await;
        let full = full
            .as_u64()
            .unwrap_or(u64::from(height))
            .clamp(u64::from(height), 8000);
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": full + 120 })),
        )
        .await;
        // Let the page redraw its charts at the new width (not a check: only the picture).
        tokio::time::sleep(Duration::from_millis(400)).await;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = artifacts();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": 1366, "height": 900 })),
        )
        .await;
    }

    async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// target/test-artifacts/dashboard (never committed: target/ is ignored).
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("test-artifacts").join("dashboard")
}

#[derive(Debug, Row, Deserialize)]
struct Shown {
    offered: u64,
    answered: u64,
    callback_requested: u64,
    abandoned: u64,
    missed: u64,
    diverted_111_core: u64,
    wait_hist: Vec<u64>,
}

/// ClickHouse's figures for a node's day, straight from the table.
async fn clickhouse_figures(fixture: &Fixture, level: &str, code: &str) -> Shown {
    let condition = match level {
        "england" => "1".to_string(),
        level => {
            let column = match level {
                "region" => "region_code",
                "icb" => "icb_code",
                "pcn" => "pcn_code",
                _ => "practice_code",
            };
            format!("practice IN (SELECT practice_code FROM organisations FINAL WHERE {column} = '{code}')")
        }
    };
    let sql = format!(
        "SELECT sum(offered) AS o, sum(answered) AS a, sum(callback_requested) AS c, sum(abandoned) AS ab, \
         sum(missed) AS m, sum(diverted_111_core) AS dc, sumForEach(wait_hist) AS wh \
         FROM window_metrics FINAL WHERE `window` = '1d' AND `start` = toDateTime({}) AND {condition}",
        midnight(DAY)
    );
    callpulse_sink::clickhouse_client(&fixture.config)
        .query(&sql)
        .fetch_one()
        .await
        .unwrap()
}

fn digits(text: &str) -> u64 {
    let only: String = text.chars().filter(char::is_ascii_digit).collect();
    only.parse()
        .unwrap_or_else(|_| panic!("no number in {text:?}"))
}

fn bound_text(seconds: Option<f64>) -> String {
    match seconds {
        None => "no answered calls".into(),
        Some(s) if s.is_infinite() => "over 1 hour".into(),
        Some(s) if s < 60.0 => format!("≤ {s} s"),
        Some(s) => format!("≤ {} min", s / 60.0),
    }
}

/// The numbers on the page equal ClickHouse's for this node.
async fn check_numbers(browser: &Browser, fixture: &Fixture, level: &str, code: &str) {
    let ch = clickhouse_figures(fixture, level, code).await;
    let england = clickhouse_figures(fixture, "england", "ENG").await;
    for (css, want) in [
        ("#calls-offered .value", ch.offered),
        ("#calls-answered .value", ch.answered),
        ("#calls-callback .value", ch.callback_requested),
        ("#calls-abandoned .value", ch.abandoned),
        ("#calls-missed .value", ch.missed),
        ("#div-core .big", ch.diverted_111_core),
    ] {
        let shown = browser.text(css).await;
        assert_eq!(
            digits(&shown),
            want,
            "{level} {code}: {css} shows {shown:?}"
        );
    }
    assert!(
        browser
            .text("#calls-offered .value")
            .await
            .ends_with("calls"),
        "counts have units"
    );
    for (css, n, of) in [
        ("#rate-answered .figure", ch.answered, ch.offered),
        ("#rate-abandoned .figure", ch.abandoned, ch.offered),
        ("#rate-answered .england", england.answered, england.offered),
        (
            "#rate-abandoned .england",
            england.abandoned,
            england.offered,
        ),
    ] {
        let shown = browser.text(css).await;
        let number: f64 = shown
            .trim_end_matches(" %")
            .parse()
            .unwrap_or_else(|_| panic!("{css}: {shown:?}"));
        let exact = 100.0 * n as f64 / of as f64;
        assert!(shown.ends_with(" %"), "{css}: {shown:?} has its unit");
        assert!(
            (number - exact).abs() <= 0.05 + 1e-9,
            "{level} {code}: {css} shows {shown}, ClickHouse {exact}"
        );
    }
    assert_eq!(
        browser.text("#wait-p90 .big").await,
        bound_text(percentile(&ch.wait_hist, 9, 10)),
        "{level} {code}: p90 wait"
    );
    assert_eq!(
        browser.text("#wait-p50 .big").await,
        bound_text(percentile(&ch.wait_hist, 1, 2)),
        "{level} {code}: p50 wait"
    );
}

#[tokio::test]
async fn page_shows_clickhouse_numbers_and_drills_down() {
    let fixture = Fixture::load("browser").await;
    let base = fixture.serve().await;
    let driver = start_driver().await;
    let browser = Browser::open(&driver).await;
    let home = fixture.home();
    let region = home[0].region_code.clone();
    let pcn = home[0].pcn_code.clone();
    let practice = home[0].code.clone();

    // Without a token: the sign-in form and no figures.
    browser.goto(&format!("{base}/")).await;
    browser.find("#token").await;
    assert_eq!(
        browser
            .run("return document.getElementById('dashboard').hidden")
            .await,
        true
    );
    browser.screenshot("sign-in-laptop", 1366, 900).await;

    browser.type_into("#token", ENGLAND_TOKEN).await;
    browser.click("#login-form button[type=submit]").await;
    browser.wait_loaded(&format!("england/ENG/{DAY}")).await;
    check_numbers(&browser, &fixture, "england", "ENG").await;
    browser.screenshot("1-england-laptop", 1366, 900).await;
    browser.screenshot("1-england-phone", 390, 844).await;

    // Drill down by clicking the children's links.
    for (level, code, shot) in [
        ("region", region.as_str(), "2-region"),
        ("icb", HOME_ICB, "3-icb"),
        ("pcn", pcn.as_str(), "4-pcn"),
        ("practice", practice.as_str(), "5-practice"),
    ] {
        browser
            .click(&format!("#children-table a[href='#/{level}/{code}']"))
            .await;
        browser.wait_loaded(&format!("{level}/{code}/{DAY}")).await;
        check_numbers(&browser, &fixture, level, code).await;
        browser
            .screenshot(&format!("{shot}-laptop"), 1366, 900)
            .await;
        if matches!(level, "icb" | "practice") {
            browser.screenshot(&format!("{shot}-phone"), 390, 844).await;
        }
    }
    assert_eq!(
        browser
            .run("return document.getElementById('children-block').hidden")
            .await,
        true
    );
    // The breadcrumb leads back up.
    browser
        .click(&format!("#breadcrumb a[href='#/icb/{HOME_ICB}']"))
        .await;
    browser.wait_loaded(&format!("icb/{HOME_ICB}/{DAY}")).await;
    let alerts = browser.text("#alerts").await;
    assert!(alerts.contains("diversion 111"), "{alerts}");
    let heat_cells = browser
        .run("return document.querySelectorAll('#heat-table tbody td').length")
        .await;
    assert_eq!(heat_cells, 7 * 12);

    // An ICB's login: its ICB; another ICB neither on the page nor through the API.
    browser.click("#logout").await;
    browser.find("#token").await;
    browser.type_into("#token", QHM_TOKEN).await;
    browser.click("#login-form button[type=submit]").await;
    browser.wait_loaded(&format!("icb/{HOME_ICB}/{DAY}")).await;
    check_numbers(&browser, &fixture, "icb", HOME_ICB).await;
    browser
        .run(&format!("location.hash = '#/icb/{}'", fixture.far_icb))
        .await;
    browser.wait_loaded("error/403").await;
    assert!(browser.text("#denied").await.contains("may not see"));
    browser
        .screenshot("6-icb-login-denied-laptop", 1366, 900)
        .await;
    let far_practice = &fixture.under("icb", &fixture.far_icb)[0].code;
    let statuses = browser
        .run_async(&format!(
            "const done = arguments[arguments.length - 1];
             const token = sessionStorage.getItem('callpulse.token');
             const paths = ['icb/{far}/summary', 'practice/{far_practice}/summary', 'england/ENG/children', 'icb/{HOME_ICB}/summary'];
             Promise.all(paths.map((p) => fetch('/api/v1/nodes/' + p, {{ headers: {{ Authorization: 'Bearer ' + token }} }}).then((r) => r.status)))
               .then(done);",
            far = fixture.far_icb
        ))
        .await;
    assert_eq!(statuses, json!([403, 403, 403, 200]));

    browser.close().await;
    drop(driver);
    fixture.drop_database().await;
}
