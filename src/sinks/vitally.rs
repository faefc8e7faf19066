//! `load vitally`: a finished run's accounts into Vitally, as account traits.
//!
//! One message per org, `{"type": "account", "accountId", "messageId", "timestamp",
//! "traits"}`, sent in batches to `{base}/analytics/v1/batch` (Basic auth, the API key
//! as user name). The traits are data (`[sinks.vitally] traits`); the messageId is a
//! hash of the org, the as_of and the traits, so the same message always has the same
//! id; the timestamp is the as_of, so Vitally keeps the traits' history.
//!
//! Delivery: a batch answered 2xx is recorded at once in `OUT/sinks/vitally-delivered.tsv`
//! (as_of, base URL, messageId) and never sent again, by this load or a re-run; what
//! to do with any other answer is `step`'s rule. `--csv` writes Vitally's CSV upload
//! instead (`csv_frame`).

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use polars::prelude::*;
use serde_json::{json, Value};

use crate::error::InputError;
use crate::model::{VitallySink, VITALLY_SPECIAL_TRAITS};
use crate::sinks::{error_chain, redact, FinishedRun};

/// The default service address (EU workspaces have their own: pass `--base-url`).
pub const DEFAULT_BASE_URL: &str = "https://api.vitally.io";
/// The batch endpoint, under the base URL.
pub const BATCH_PATH: &str = "/analytics/v1/batch";
/// Where the delivered messages are recorded, under `OUT`.
pub const LEDGER: &str = "sinks/vitally-delivered.tsv";

/// One account's message.
#[derive(Debug, Clone)]
pub struct Message {
    pub org_id: String,
    pub id: String,
    pub body: Value,
}

/// Where one trait's value comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Column(String),
    Indicators,
    AsOf,
}

/// The traits the settings name, expanded (`category_scores` to each category's
/// score column) and checked against the health table's columns.
fn trait_sources(
    sink: &VitallySink,
    categories: &[String],
    health: &DataFrame,
    config_name: &str,
) -> Result<Vec<(String, Source)>, InputError> {
    let mut sources = Vec::new();
    for name in &sink.traits {
        match name.as_str() {
            "category_scores" => sources.extend(categories.iter().map(|c| {
                let column = crate::score::category_column(c);
                (column.clone(), Source::Column(column))
            })),
            "indicators" => sources.push((name.clone(), Source::Indicators)),
            "account_health_as_of" => sources.push((name.clone(), Source::AsOf)),
            _ => sources.push((name.clone(), Source::Column(name.clone()))),
        }
    }
    for (name, source) in &sources {
        if let Source::Column(column) = source {
            if health.column(column).is_err() {
                return Err(InputError::Config {
                    file: config_name.to_string(),
                    key: "sinks.vitally.traits".into(),
                    problem: format!(
                        "{name:?} is not a column of the run's health table, nor one of {}",
                        VITALLY_SPECIAL_TRAITS.join(", ")
                    ),
                });
            }
        }
    }
    Ok(sources)
}

/// A cell as a JSON value: numbers as numbers (NaN and infinities as null), dates
/// as YYYY-MM-DD, instants as RFC 3339.
fn json_value(v: AnyValue) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => json!(b),
        AnyValue::String(s) => json!(s),
        AnyValue::StringOwned(s) => json!(s.as_str()),
        AnyValue::Float64(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        AnyValue::Float32(f) => {
            serde_json::Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number)
        }
        AnyValue::Date(d) => json!(crate::time::iso_of_day(d)),
        AnyValue::Datetime(v, unit, _) => {
            let us = crate::time::micros(v, unit);
            chrono::DateTime::from_timestamp_micros(us)
                .map_or(Value::Null, |t| json!(t.to_rfc3339()))
        }
        other => match other.extract::<i64>() {
            Some(i) if other.is_integer() => json!(i),
            _ => json!(other.to_string()),
        },
    }
}

/// The run's messages, one per org of `health`, in org_id order, and the trait names
/// in the settings' order.
pub fn messages(
    run: &FinishedRun,
    sink: &VitallySink,
    categories: &[String],
    config_name: &str,
) -> Result<(Vec<String>, Vec<Message>)> {
    let health = run.required("health")?;
    let health = health.sort(["org_id"], Default::default())?;
    let sources = trait_sources(sink, categories, &health, config_name)?;
    let fired = if sources.iter().any(|(_, s)| *s == Source::Indicators) {
        fired_indicators(run)?
    } else {
        BTreeMap::new()
    };
    let as_of = run.as_of.iso();
    let orgs = health.column("org_id")?.str()?.clone();
    let columns: Vec<Option<&Column>> = sources
        .iter()
        .map(|(_, s)| match s {
            Source::Column(c) => health.column(c).ok(),
            _ => None,
        })
        .collect();
    let mut messages = Vec::with_capacity(health.height());
    for row in 0..health.height() {
        let Some(org) = orgs.get(row) else { continue };
        let mut traits = serde_json::Map::new();
        for ((name, source), column) in sources.iter().zip(&columns) {
            let value = match (source, column) {
                (Source::Column(_), Some(c)) => json_value(c.get(row)?),
                (Source::Indicators, _) => json!(fired.get(org).cloned().unwrap_or_default()),
                (Source::AsOf, _) => json!(as_of),
                (Source::Column(_), None) => Value::Null,
            };
            traits.insert(name.clone(), value);
        }
        let id = message_id(org, &as_of, &traits);
        messages.push(Message {
            org_id: org.to_string(),
            body: json!({
                "type": "account",
                "accountId": org,
                "messageId": id,
                "timestamp": format!("{as_of}T00:00:00Z"),
                "traits": traits,
            }),
            id,
        });
    }
    Ok((
        sources.into_iter().map(|(name, _)| name).collect(),
        messages,
    ))
}

/// The names of each org's fired indicators, sorted, each once.
fn fired_indicators(run: &FinishedRun) -> Result<BTreeMap<String, Vec<String>>> {
    let indicators = run.required("indicators")?;
    let orgs = indicators.column("org_id")?.str()?.clone();
    let names = indicators.column("indicator")?.str()?.clone();
    let mut fired: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (org, name) in orgs.iter().zip(names.iter()) {
        if let (Some(org), Some(name)) = (org, name) {
            fired
                .entry(org.to_string())
                .or_default()
                .push(name.to_string());
        }
    }
    for names in fired.values_mut() {
        names.sort();
        names.dedup();
    }
    Ok(fired)
}

/// A deterministic id: the org, the as_of and the traits hashed, the traits as JSON
/// with their keys sorted (put in a BTreeMap here, whatever order `Map` keeps).
fn message_id(org: &str, as_of: &str, traits: &serde_json::Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let sorted: BTreeMap<&String, &Value> = traits.iter().collect();
    let text = serde_json::to_string(&sorted).unwrap_or_default();
    let digest = Sha256::digest(format!("{org}\0{as_of}\0{text}").as_bytes());
    format!("{digest:x}")[..32].to_string()
}

/// The record of delivered messages for one as_of and base URL.
pub struct Ledger {
    path: PathBuf,
    as_of: String,
    base_url: String,
    delivered: HashSet<String>,
}

impl Ledger {
    /// Reads the record of this as_of and base URL.
    pub fn open(out: &Path, as_of: &str, base_url: &str) -> Result<Ledger> {
        let path = out.join(LEDGER);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            // Unreadable is not "nothing delivered": that would send everything again.
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let delivered = text
            .lines()
            .filter_map(|l| {
                let mut parts = l.split('\t');
                let (day, url, id) = (parts.next()?, parts.next()?, parts.next()?);
                (day == as_of && url == base_url).then(|| id.to_string())
            })
            .collect();
        Ok(Ledger {
            path,
            as_of: as_of.to_string(),
            base_url: base_url.to_string(),
            delivered,
        })
    }

    /// Takes `OUT/sinks/.vitally.lock` for the life of the returned file: two loads
    /// at once would both send what neither has recorded yet.
    pub fn lock(&self) -> Result<std::fs::File> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::publish::lock_file(
            &dir.join(".vitally.lock"),
            format!(
                "another `load vitally` is sending from {}; try again once it has finished",
                dir.display()
            ),
        )
    }

    /// The messages not delivered yet, in order.
    pub fn pending<'m>(&self, messages: &'m [Message]) -> Vec<&'m Message> {
        messages.iter().filter(|m| !self.delivered(&m.id)).collect()
    }

    /// Drops the lines of other as_of dates from the file: an older run's deliveries
    /// are done with, and the file stays one run's size.
    pub fn prune(&self) -> Result<()> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| l.split('\t').next() == Some(self.as_of.as_str()))
            .collect();
        if kept.len() == text.lines().count() {
            return Ok(());
        }
        let rewritten: String = kept.iter().map(|l| format!("{l}\n")).collect();
        crate::publish::replace_file(&self.path, |p| Ok(std::fs::write(p, rewritten)?))
    }

    pub fn delivered(&self, id: &str) -> bool {
        self.delivered.contains(id)
    }

    /// Records a delivered batch, flushed to disk before the next batch is sent.
    pub fn record(&mut self, ids: &[&str]) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        let mut lines = String::new();
        for id in ids {
            lines.push_str(&format!("{}\t{}\t{id}\n", self.as_of, self.base_url));
            self.delivered.insert(id.to_string());
        }
        file.write_all(lines.as_bytes())
            .and_then(|()| file.sync_data())
            .with_context(|| format!("recording delivered messages in {}", self.path.display()))
    }
}

/// What the service answered one request.
#[derive(Debug)]
pub enum Answer {
    Status {
        code: u16,
        /// `Retry-After`: seconds, or an HTTP date.
        retry_after: Option<String>,
        /// `RateLimit-Reset`: seconds until the limit resets.
        ratelimit_reset: Option<String>,
        body: String,
    },
    /// No answer: the connection failed or the request timed out.
    NoAnswer(String),
}

/// What to do after an answer.
#[derive(Debug, PartialEq)]
pub enum Step {
    Delivered,
    /// Wait, then send the batch again; why, for the progress line.
    Retry(Duration, String),
    /// Stop: retrying cannot help (a refused key, a malformed request) or the tries
    /// are used up.
    Stop(String),
}

/// The retry rule. `attempt` counts from 1; `now` reads an HTTP-date Retry-After.
/// 2xx: delivered. 401 and 403: the key is refused, stop. 429: wait what the service
/// asks (Retry-After, else RateLimit-Reset, else the backoff); asked to wait longer
/// than `max_wait_seconds`, stop (a re-run later resumes) rather than knock early.
/// 5xx and no answer: wait the backoff, doubled each try, capped at
/// `max_wait_seconds`. After `max_attempts` tries, stop. Any other status (400, 404,
/// 413...): stop, the request itself is wrong.
pub fn step(
    answer: &Answer,
    attempt: u32,
    sink: &VitallySink,
    now: chrono::DateTime<chrono::Utc>,
) -> Step {
    let backoff = sink.backoff_seconds * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let (asked, what) = match answer {
        Answer::Status { code, .. } if (200..300).contains(code) => return Step::Delivered,
        Answer::Status {
            code: code @ (401 | 403),
            ..
        } => {
            return Step::Stop(format!(
                "Vitally refused the API key (HTTP {code}); check VITALLY_API_KEY"
            ))
        }
        Answer::Status {
            code: 429,
            retry_after,
            ratelimit_reset,
            ..
        } => {
            let asked = retry_after
                .as_deref()
                .and_then(|v| wait_asked(v, now))
                .or_else(|| ratelimit_reset.as_deref().and_then(|v| wait_asked(v, now)));
            if let Some(seconds) = asked.filter(|&s| s > sink.max_wait_seconds) {
                return Step::Stop(format!(
                    "Vitally is rate limiting and asks to wait {seconds:.0} s, more than \
                     sinks.vitally.max_wait_seconds ({} s)",
                    sink.max_wait_seconds
                ));
            }
            (
                asked.unwrap_or(backoff),
                "HTTP 429 (rate limited)".to_string(),
            )
        }
        Answer::Status { code, .. } if *code >= 500 => (backoff, format!("HTTP {code}")),
        Answer::Status { code, body, .. } => {
            return Step::Stop(format!(
                "Vitally answered HTTP {code}: {}",
                body.chars().take(300).collect::<String>()
            ))
        }
        Answer::NoAnswer(why) => (backoff, why.clone()),
    };
    if attempt >= sink.max_attempts {
        return Step::Stop(format!("{what}, after {attempt} tries"));
    }
    Step::Retry(
        Duration::from_secs_f64(asked.clamp(0.0, sink.max_wait_seconds)),
        what,
    )
}

/// A wait header's seconds: a number of seconds, or an HTTP date (Retry-After).
fn wait_asked(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<f64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return seconds.is_finite().then_some(seconds.max(0.0));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(((at.timestamp_millis() - now.timestamp_millis()) as f64 / 1000.0).max(0.0))
}

/// What a load delivered.
pub struct Delivered {
    /// Accounts delivered by this load.
    pub sent: usize,
    /// Accounts a previous load of the same run had delivered.
    pub already: usize,
    pub total: usize,
}

/// Sends the messages not yet delivered, batch by batch, following `step`.
pub fn deliver(
    messages: &[Message],
    key: &str,
    base_url: &str,
    sink: &VitallySink,
    ledger: &mut Ledger,
    quiet: bool,
) -> Result<Delivered> {
    let pending: Vec<&Message> = messages
        .iter()
        .filter(|m| !ledger.delivered(&m.id))
        .collect();
    let already = messages.len() - pending.len();
    let url = format!("{base_url}{BATCH_PATH}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the HTTP client")?;
    let timeout = Duration::from_secs_f64(sink.timeout_seconds);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("account-health/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("starting the HTTP client")?;
    let mut sent = 0;
    for batch in pending.chunks(sink.batch_size) {
        let bodies: Vec<&Value> = batch.iter().map(|m| &m.body).collect();
        let body = serde_json::to_vec(&bodies)?;
        let mut attempt = 1;
        loop {
            let answer = runtime.block_on(post(&client, &url, key, body.clone()));
            match step(&answer, attempt, sink, chrono::Utc::now()) {
                Step::Delivered => {
                    let ids: Vec<&str> = batch.iter().map(|m| m.id.as_str()).collect();
                    ledger.record(&ids)?;
                    sent += batch.len();
                    break;
                }
                Step::Retry(wait, why) => {
                    if !quiet {
                        eprintln!(
                            "vitally: {}; retrying in {:.2} s",
                            redact(&why, key),
                            wait.as_secs_f64()
                        );
                    }
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Step::Stop(reason) => {
                    anyhow::bail!(redact(
                        &format!(
                            "{reason}. Delivered {sent} of the {} accounts left to send \
                             ({already} delivered by an earlier load of this run, {} in all); \
                             a re-run sends only the rest",
                            pending.len(),
                            messages.len()
                        ),
                        key
                    ))
                }
            }
        }
    }
    Ok(Delivered {
        sent,
        already,
        total: messages.len(),
    })
}

async fn post(client: &reqwest::Client, url: &str, key: &str, body: Vec<u8>) -> Answer {
    let response = client
        .post(url)
        .basic_auth(key, Some(""))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Answer::NoAnswer("no answer (timed out)".into()),
        Err(e) => return Answer::NoAnswer(format!("no answer ({})", error_chain(e))),
    };
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let code = response.status().as_u16();
    let retry_after = header("retry-after");
    let ratelimit_reset = header("ratelimit-reset");
    let body = response.text().await.unwrap_or_default();
    Answer::Status {
        code,
        retry_after,
        ratelimit_reset,
        body,
    }
}

/// Checks `--base-url`: an http(s) address; the trailing slash dropped.
pub fn base_url(arg: &str) -> Result<String, InputError> {
    let url = arg.trim_end_matches('/');
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains('@') {
        return Err(InputError::Usage {
            problem: format!(
                "--base-url {arg:?}: an http:// or https:// address without credentials (the key comes from VITALLY_API_KEY)"
            ),
        });
    }
    Ok(url.to_string())
}

/// Vitally's CSV upload: `externalId`, then one column per trait; plain numbers,
/// YYYY-MM-DD dates, lowercase booleans, a list (the fired indicators) as its items
/// joined by `;`, an empty cell for null.
pub fn csv_frame(names: &[String], messages: &[Message]) -> Result<DataFrame> {
    let mut columns = vec![Column::new(
        "externalId".into(),
        messages
            .iter()
            .map(|m| m.org_id.clone())
            .collect::<Vec<_>>(),
    )];
    for name in names {
        let cells: Vec<Option<String>> = messages
            .iter()
            .map(|m| csv_cell(&m.body["traits"][name]))
            .collect();
        columns.push(Column::new(name.as_str().into(), cells));
    }
    Ok(DataFrame::new(messages.len(), columns)?)
}

fn csv_cell(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        // Rust's Display of a float is the shortest round-trip digits, never an exponent.
        Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => f.to_string(),
            (None, None) => n.to_string(),
        }),
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(csv_cell)
                .collect::<Vec<_>>()
                .join(";"),
        ),
        Value::Object(_) => Some(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink() -> VitallySink {
        crate::model::Model::default_model().sinks.vitally
    }

    fn status(code: u16) -> Answer {
        Answer::Status {
            code,
            retry_after: None,
            ratelimit_reset: None,
            body: "body".into(),
        }
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn a_2xx_is_delivered_and_a_refused_key_or_bad_request_stops_at_once() {
        let s = sink();
        assert_eq!(step(&status(200), 1, &s, now()), Step::Delivered);
        assert_eq!(step(&status(204), 6, &s, now()), Step::Delivered);
        for code in [401, 403, 400, 404, 413] {
            assert!(
                matches!(step(&status(code), 1, &s, now()), Step::Stop(_)),
                "{code}"
            );
        }
    }

    #[test]
    fn server_errors_and_timeouts_back_off_doubling_up_to_the_cap_then_stop() {
        let mut s = sink();
        s.backoff_seconds = 1.0;
        s.max_wait_seconds = 5.0;
        s.max_attempts = 4;
        let secs = |a, s: &VitallySink| match step(&status(503), a, s, now()) {
            Step::Retry(d, _) => d.as_secs_f64(),
            other => panic!("{other:?}"),
        };
        assert_eq!([secs(1, &s), secs(2, &s), secs(3, &s)], [1.0, 2.0, 4.0]);
        s.max_attempts = 10;
        assert_eq!(secs(4, &s), 5.0, "8 s capped at max_wait_seconds");
        s.max_attempts = 4;
        assert!(
            matches!(step(&status(500), 4, &s, now()), Step::Stop(m) if m.contains("after 4 tries"))
        );
        let timeout = Answer::NoAnswer("no answer (timed out)".into());
        assert_eq!(
            step(&timeout, 2, &s, now()),
            Step::Retry(Duration::from_secs(2), "no answer (timed out)".into())
        );
        assert!(matches!(step(&timeout, 4, &s, now()), Step::Stop(_)));
    }

    #[test]
    fn a_429_waits_what_the_service_asks_up_to_the_cap() {
        let s = sink(); // backoff 1 s, cap 60 s
        let limited = |retry_after: Option<&str>, reset: Option<&str>| Answer::Status {
            code: 429,
            retry_after: retry_after.map(str::to_string),
            ratelimit_reset: reset.map(str::to_string),
            body: String::new(),
        };
        let wait = |a: Answer| match step(&a, 1, &s, now()) {
            Step::Retry(d, _) => d.as_secs_f64(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            wait(limited(Some("7"), Some("30"))),
            7.0,
            "Retry-After first"
        );
        assert_eq!(wait(limited(None, Some("30"))), 30.0);
        assert_eq!(
            wait(limited(Some("Mon, 23 Nov 2026 10:00:12 GMT"), None)),
            12.0
        );
        assert_eq!(wait(limited(Some("60"), None)), 60.0, "at the cap: waited");
        // Asked for longer than the cap: stop now, a later re-run resumes.
        assert!(matches!(
            step(&limited(Some("61"), None), 1, &s, now()),
            Step::Stop(m) if m.contains("asks to wait 61 s")
        ));
        assert_eq!(wait(limited(None, None)), 1.0, "no header: the backoff");
        assert_eq!(
            wait(limited(Some("soon"), None)),
            1.0,
            "unreadable: the backoff"
        );
    }

    #[test]
    fn csv_cells_are_plain() {
        assert_eq!(csv_cell(&json!(0.1)), Some("0.1".into()));
        assert_eq!(csv_cell(&json!(1e-7)), Some("0.0000001".into()));
        assert_eq!(csv_cell(&json!(12)), Some("12".into()));
        assert_eq!(csv_cell(&json!(true)), Some("true".into()));
        assert_eq!(csv_cell(&json!(["a", "b"])), Some("a;b".into()));
        assert_eq!(csv_cell(&Value::Null), None);
    }

    #[test]
    fn message_ids_depend_on_org_as_of_and_traits() {
        let mut t = serde_json::Map::new();
        t.insert("health_score".into(), json!(5.0));
        let a = message_id("org_1", "2026-11-23", &t);
        assert_eq!(a.len(), 32);
        assert_eq!(a, message_id("org_1", "2026-11-23", &t));
        assert_ne!(a, message_id("org_2", "2026-11-23", &t));
        assert_ne!(a, message_id("org_1", "2026-11-24", &t));
        t.insert("health_score".into(), json!(5.5));
        assert_ne!(a, message_id("org_1", "2026-11-23", &t));
    }

    #[test]
    fn base_urls_are_http_without_credentials() {
        assert_eq!(
            base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("https://key@api.vitally.io").is_err());
    }
}
