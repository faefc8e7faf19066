//! The sinks (issue 23): `load postgres` against a real PostgreSQL server the test
//! starts, `load vitally` against a stand-in HTTP server on 127.0.0.1 that answers as
//! a busy Vitally would.

use std::collections::BTreeMap;
use std::process::Output;

use crate::pg_server::{PgServer, PASSWORD};
use crate::util::*;

const EARLIER: &str = "2026-11-16";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A generated input of `orgs` orgs over `days` days with one run published at AS_OF.
fn one_run(orgs: usize, days: u32) -> Workdir {
    let w = Workdir::new();
    w.generate(orgs, days, 4);
    w.run(&[]);
    w
}

/// Asserts the command failed with `code` and said `needle` on stderr.
fn assert_fails(o: &Output, code: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
    assert!(
        stderr(o).contains(needle),
        "expected {needle:?} in: {}",
        stderr(o)
    );
}

/// A generated input with two runs published in out/ (EARLIER, then AS_OF), so the
/// history holds two entries.
fn two_runs() -> Workdir {
    let w = Workdir::new();
    w.generate(12, 60, 4);
    w.run_at(EARLIER, &[]);
    w.run(&[]);
    w
}

fn load_postgres(w: &Workdir, url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["load", "postgres", "--out", "out"];
    args.extend_from_slice(extra);
    w.cmd_env(&args, &[("DATABASE_URL", url)])
}

fn count(c: &mut postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

/// The rows of every current table, and of each history table by as_of.
fn db_counts(c: &mut postgres::Client) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for t in account_health::output::TABLE_NAMES {
        counts.insert(
            t.to_string(),
            count(c, &format!("SELECT count(*) FROM account_health.{t}")),
        );
    }
    for t in ["health", "metric_scores", "indicators"] {
        for row in c
            .query(
                &format!(
                    "SELECT as_of::text, count(*) FROM account_health.{t}_history GROUP BY as_of ORDER BY as_of"
                ),
                &[],
            )
            .unwrap()
        {
            let day: String = row.get(0);
            counts.insert(format!("{t}_history {day}"), row.get(1));
        }
    }
    counts
}

#[test]
fn postgres_load_replaces_the_current_tables_and_upserts_history_by_as_of() {
    let w = two_runs();
    let pg = PgServer::start();
    let o = load_postgres(&w, &pg.url(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stdout(&o) + &stderr(&o);
    assert!(
        !printed.contains(PASSWORD),
        "the password is never printed: {printed}"
    );
    assert!(printed.contains("health: 12 rows"), "{printed}");
    assert!(printed.contains("2 history entries"), "{printed}");

    // Every current table holds the run's rows, every history table both as_of dates.
    let mut c = pg.client();
    let counts = db_counts(&mut c);
    let run = w.out().join("current");
    for t in account_health::output::TABLE_NAMES {
        let height = read_parquet(&run.join(format!("{t}.parquet"))).height() as i64;
        assert_eq!(counts[t], height, "{t}");
    }
    for t in ["health", "metric_scores", "indicators"] {
        for day in [EARLIER, AS_OF] {
            let entry = w.out().join(format!("history/as_of={day}/{t}.parquet"));
            let height = read_parquet(&entry).height() as i64;
            assert_eq!(
                counts
                    .get(&format!("{t}_history {day}"))
                    .copied()
                    .unwrap_or(0),
                height,
                "{t} {day}"
            );
        }
    }

    // Values arrive exact and typed: a health score bit for bit, as_of a date.
    let health = read_parquet(&run.join("health.parquet"));
    let org = strings(&health, "org_id")[0].clone();
    let want = cell_f64(&health, "org_id", &org, "health_score");
    let got: Option<f64> = c
        .query_one(
            "SELECT health_score FROM account_health.health WHERE org_id = $1",
            &[&org],
        )
        .unwrap()
        .get(0);
    assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits));
    let types: BTreeMap<String, String> = c
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = 'account_health' AND table_name = 'health'",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(types["org_id"], "text");
    assert_eq!(types["as_of"], "date");
    assert_eq!(types["health_score"], "double precision");
    assert_eq!(types["risk_count"], "bigint");
    let as_of: String = c
        .query_one(
            "SELECT DISTINCT as_of::text FROM account_health.health",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(as_of, AS_OF);
    // metric_scores has no as_of of its own: its history rows carry the entry's.
    assert_eq!(
        count(
            &mut c,
            "SELECT count(DISTINCT as_of) FROM account_health.metric_scores_history"
        ),
        2
    );

    // Loading the same run again adds nothing.
    let o = load_postgres(&w, &pg.url(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("0 history entries"), "{}", stdout(&o));
    assert_eq!(db_counts(&mut c), counts);
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM account_health.loads"),
        2
    );

    // A re-run of EARLIER replaces its entry: loaded again, rows replaced, not added.
    w.run_at(EARLIER, &[]);
    let o = load_postgres(&w, &pg.url(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("1 history entries"), "{}", stdout(&o));
    let history = |counts: &BTreeMap<String, i64>| -> BTreeMap<String, i64> {
        counts
            .iter()
            .filter(|(k, _)| k.contains("_history"))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    let after = db_counts(&mut c);
    assert_eq!(
        history(&after),
        history(&counts),
        "the entry's rows replaced, not added"
    );
    // ...and the current tables are now that run's (as_of EARLIER).
    let as_of: String = c
        .query_one(
            "SELECT DISTINCT as_of::text FROM account_health.health",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(as_of, EARLIER);

    // Another schema is another set of tables.
    let o = load_postgres(&w, &pg.url(), &["--schema", "other"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(count(&mut c, "SELECT count(*) FROM other.health"), 12);
}

#[test]
fn postgres_tables_follow_the_run_and_history_outlives_the_folder() {
    let w = two_runs();
    let pg = PgServer::start();
    let mut c = pg.client();
    assert!(load_postgres(&w, &pg.url(), &[]).status.success());

    // A current table whose columns changed (an older tool's) is made again.
    c.batch_execute("ALTER TABLE account_health.health ADD COLUMN retired text")
        .unwrap();
    // A table the run lacks (a run from an older version) is emptied, not left stale.
    std::fs::remove_file(w.out().join("current/deployment.parquet")).unwrap();
    // An entry pruned from OUT/history stays in the database.
    std::fs::remove_dir_all(w.out().join(format!("history/as_of={EARLIER}"))).unwrap();

    let o = load_postgres(&w, &pg.url(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("deployment: 0 rows"), "{}", stdout(&o));
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM account_health.deployment"),
        0
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM information_schema.columns
             WHERE table_schema = 'account_health' AND table_name = 'health' AND column_name = 'retired'"
        ),
        0
    );
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM account_health.health"),
        12
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(DISTINCT as_of) FROM account_health.health_history"
        ),
        2
    );
}

#[test]
fn a_run_without_parquet_is_refused_before_the_database_is_touched() {
    let w = Workdir::new();
    w.generate(12, 60, 4);
    w.run(&["--format", "csv"]);
    let pg = PgServer::start();
    let o = load_postgres(&w, &pg.url(), &[]);
    assert_fails(&o, 2, "health.parquet");
    let schemas = count(
        &mut pg.client(),
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'account_health'",
    );
    assert_eq!(schemas, 0, "nothing created");
}

#[test]
fn a_failed_postgres_load_leaves_the_database_as_it_was() {
    let w = Workdir::new();
    w.generate(12, 60, 4);
    w.run_at(EARLIER, &[]);
    let pg = PgServer::start();
    let o = load_postgres(&w, &pg.url(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut c = pg.client();
    let before = db_counts(&mut c);

    let as_of = |c: &mut postgres::Client| -> String {
        c.query_one(
            "SELECT DISTINCT as_of::text FROM account_health.health",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let loaded = |c: &mut postgres::Client| -> Vec<String> {
        c.query(
            "SELECT as_of::text || ' ' || fingerprint FROM account_health.history_loads ORDER BY 1",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect()
    };
    let loaded_before = loaded(&mut c);
    w.run(&[]);

    // Two failures, each refused by the server: early, a check on health_history
    // that the new as_of breaks (history is loaded first); late, after every history
    // table and the current tables up to `trends` were replaced: `deployment` has a
    // column the run lacks and a view on it, so it cannot be made again. Both must
    // leave everything as it was.
    for (setup, expect) in [
        (
            "ALTER TABLE account_health.health_history ADD CONSTRAINT before_the_23rd CHECK (as_of < '2026-11-20')",
            "violates check constraint \"before_the_23rd\"",
        ),
        (
            "ALTER TABLE account_health.health_history DROP CONSTRAINT before_the_23rd;
             ALTER TABLE account_health.deployment ADD COLUMN mine text;
             CREATE VIEW account_health.my_view AS SELECT mine FROM account_health.deployment",
            "depend",
        ),
    ] {
        c.batch_execute(setup).unwrap();
        let o = load_postgres(&w, &pg.url(), &[]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(expect), "{err}");
        assert!(err.contains("loading account_health."), "names the table: {err}");
        assert!(!err.contains(PASSWORD), "{err}");
        assert_eq!(db_counts(&mut c), before, "rolled back");
        assert_eq!(as_of(&mut c), EARLIER, "the current tables are the earlier run's");
        assert_eq!(loaded(&mut c), loaded_before);
        assert_eq!(count(&mut c, "SELECT count(*) FROM account_health.loads"), 1);
    }
}

#[test]
fn postgres_connection_problems_are_clear_errors_without_the_password() {
    let w = one_run(4, 40);

    // Nothing listens on this port: refused at once, not a hang.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ana:{PASSWORD}@127.0.0.1:{port}/metabase");
    let o = load_postgres(&w, &url, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "cannot connect to PostgreSQL at ana@127.0.0.1:{port}/metabase"
        )),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");

    // A server that accepts the connection and then says nothing: the whole
    // connection is bounded by connect_timeout, not only the TCP connect.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://ana:{PASSWORD}@127.0.0.1:{port}/metabase?connect_timeout=2");
    let started = std::time::Instant::now();
    let o = load_postgres(&w, &url, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(started.elapsed().as_secs_f64() < 20.0, "no hang");
    assert!(
        stderr(&o).contains("no answer within 2 s"),
        "{}",
        stderr(&o)
    );
    drop(silent);

    // A URL that does not parse is a usage error; it is not quoted back.
    let o = load_postgres(&w, &format!("postgres://ana:{PASSWORD}@db:notaport/x"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains(PASSWORD), "{}", stderr(&o));

    // No URL at all: clap says which flag or variable is missing.
    let o = w.cmd(&["load", "postgres", "--out", "out"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--url"), "{}", stderr(&o));

    // No run in the folder: exit 2, naming it.
    let o = w.cmd_env(
        &["load", "postgres", "--out", "nothing-here"],
        &[("DATABASE_URL", &url)],
    );
    assert_fails(&o, 2, "nothing-here/manifest.json");
}

#[test]
fn a_wrong_postgres_password_is_refused_by_the_server_and_not_printed() {
    let w = one_run(4, 40);
    let pg = PgServer::start();
    let wrong = "not-the-Password-77";
    let url = format!("postgres://postgres:{wrong}@127.0.0.1:{}/postgres", pg.port);
    let o = load_postgres(&w, &url, &[]);
    assert_fails(&o, 1, "password authentication failed");
    assert!(!stderr(&o).contains(wrong), "{}", stderr(&o));
}

// ---- Vitally ------------------------------------------------------------------

const KEY: &str = "test-key";
/// `Basic base64("test-key:")`: the key as user name, an empty password.
const AUTH: &str = "Basic dGVzdC1rZXk6";

/// One request the stand-in received, and its answer.
struct Received {
    body: serde_json::Value,
    status: u16,
    at: std::time::Instant,
}

/// An answer: a status and headers. Status `HANG`: no answer for 1.5 s, longer than
/// the client waits (1 s), then the connection is dropped; the client's next try
/// is answered as soon as the hang ends, within its own wait.
type Answer = (u16, Vec<(&'static str, String)>);
const HANG: u16 = 0;

/// A stand-in for Vitally's Analytics API on 127.0.0.1: 401 for a wrong key or no key,
/// 404 off the batch endpoint, otherwise what `script` says for the n-th request with
/// the right key (counted from 0).
struct Vitally {
    url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    server: std::sync::Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Vitally {
    fn start(mut script: impl FnMut(usize) -> Answer + Send + 'static) -> Vitally {
        let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, log) = (server.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            for mut request in s.incoming_requests() {
                let auth = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_string());
                let mut text = String::new();
                std::io::Read::read_to_string(request.as_reader(), &mut text).unwrap();
                let (status, headers) = if request.url() != "/analytics/v1/batch"
                    || *request.method() != tiny_http::Method::Post
                {
                    (404, vec![])
                } else if auth.as_deref() != Some(AUTH) {
                    (401, vec![])
                } else {
                    n += 1;
                    script(n - 1)
                };
                log.lock().unwrap().push(Received {
                    body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
                    status,
                    at: std::time::Instant::now(),
                });
                if status == HANG {
                    std::thread::sleep(std::time::Duration::from_millis(1500));
                    continue;
                }
                let mut response =
                    tiny_http::Response::from_string("{\"success\":true}").with_status_code(status);
                for (name, value) in headers {
                    response.add_header(
                        tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap(),
                    );
                }
                let _ = request.respond(response);
            }
        });
        Vitally {
            url: format!("http://127.0.0.1:{port}"),
            received,
            server,
            thread: Some(thread),
        }
    }

    /// The accountIds of the batches answered 2xx, in order.
    fn delivered(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| r.body.as_array().cloned().unwrap_or_default())
            .map(|m| m["accountId"].as_str().unwrap().to_string())
            .collect()
    }

    fn batches(&self) -> Vec<usize> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.body.as_array().map_or(0, Vec::len))
            .collect()
    }
}

impl Drop for Vitally {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A config whose Vitally sink batches `batch_size` messages and retries quickly.
fn fast_retries(w: &Workdir, batch_size: usize, max_attempts: u32) -> String {
    let path = w.path().join("vitally.toml");
    std::fs::write(
        &path,
        format!(
            "[sinks.vitally]\nbatch_size = {batch_size}\nmax_attempts = {max_attempts}\n\
             backoff_seconds = 0.01\nmax_wait_seconds = 2.0\ntimeout_seconds = 1.0\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn load_vitally(w: &Workdir, base: &str, key: &str, extra: &[&str]) -> Output {
    let mut args = vec!["load", "vitally", "--out", "out", "--base-url", base];
    args.extend_from_slice(extra);
    w.cmd_env(&args, &[("VITALLY_API_KEY", key)])
}

fn orgs_of(w: &Workdir) -> Vec<String> {
    let mut orgs = strings(&read_parquet(&w.out().join("health.parquet")), "org_id");
    orgs.sort();
    orgs
}

#[test]
fn vitally_gets_every_account_exactly_once_through_a_busy_service() {
    let w = one_run(12, 60);
    let config = fast_retries(&w, 5, 4);
    // Batch 1: a 500, then a 429 asking for 1 s (Retry-After), then accepted; batch 2:
    // a 429 asking for 1 s (RateLimit-Reset), then accepted; batch 3: a 503, then no answer
    // within the 1 s timeout, then accepted.
    let v = Vitally::start(|n| match n {
        0 => (500, vec![]),
        1 => (429, vec![("Retry-After", "1".to_string())]),
        3 => (429, vec![("RateLimit-Reset", "1".to_string())]),
        5 => (503, vec![]),
        6 => (HANG, vec![]),
        _ => (200, vec![]),
    });
    let o = load_vitally(&w, &v.url, KEY, &["--config", &config]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The waits the service asked for were kept: 1 s after the 429 with Retry-After
    // (request 1 to 2), 1 s after the one with RateLimit-Reset (3 to 4); a backoff
    // is 0.01 s.
    let gap = |a: usize, b: usize| {
        let r = v.received.lock().unwrap();
        r[b].at.duration_since(r[a].at).as_secs_f64()
    };
    assert!(gap(1, 2) >= 1.0, "Retry-After: 1 waited ({} s)", gap(1, 2));
    assert!(
        gap(3, 4) >= 1.0,
        "RateLimit-Reset: 1 waited ({} s)",
        gap(3, 4)
    );
    assert!(
        gap(0, 1) < 0.9,
        "a 500 waits the backoff only ({} s)",
        gap(0, 1)
    );
    assert!(
        stdout(&o).contains("delivered 12 accounts"),
        "{}",
        stdout(&o)
    );
    assert!(!(stdout(&o) + &stderr(&o)).contains(KEY));

    let mut delivered = v.delivered();
    delivered.sort();
    assert_eq!(delivered, orgs_of(&w), "every account exactly once");
    assert_eq!(
        v.batches(),
        vec![5, 5, 5, 5, 5, 2, 2, 2],
        "retries resend the same batch"
    );

    // The messages: the shape, traits from the run's tables.
    let received = v.received.lock().unwrap();
    let first = &received[2].body[0];
    assert_eq!(first["type"], "account");
    assert_eq!(first["timestamp"], format!("{AS_OF}T00:00:00Z"));
    assert_eq!(first["messageId"].as_str().unwrap().len(), 32);
    let org = first["accountId"].as_str().unwrap();
    let traits = &first["traits"];
    let health = read_parquet(&w.out().join("health.parquet"));
    assert_eq!(
        traits["health_score"].as_f64(),
        cell_f64(&health, "org_id", org, "health_score")
    );
    assert_eq!(
        traits["user_engagement_score"].as_f64(),
        cell_f64(&health, "org_id", org, "user_engagement_score")
    );
    assert_eq!(traits["account_health_as_of"], AS_OF);
    let label = strings(&health, "health_label")[row_of(&health, "org_id", org)].clone();
    assert_eq!(traits["health_label"], label.as_str());
    let mut fired: Vec<String> = fired(&w)
        .into_iter()
        .filter(|(o, ..)| o == org)
        .map(|(_, name, ..)| name)
        .collect();
    fired.sort();
    fired.dedup();
    let sent: Vec<String> = traits["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent, fired);
    assert_eq!(
        traits["risk_count"].as_i64(),
        cell_f64(&health, "org_id", org, "risk_count").map(|v| v as i64)
    );
    drop(received);

    // A second load of the same run sends nothing: every batch was answered 2xx.
    let requests = v.batches().len();
    let o = load_vitally(&w, &v.url, KEY, &["--config", &config]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("delivered 0 accounts") && stdout(&o).contains("12 already"));
    assert_eq!(v.batches().len(), requests);
}

#[test]
fn when_retries_run_out_the_load_says_what_was_delivered_and_a_rerun_sends_the_rest() {
    let w = one_run(12, 60);
    let config = fast_retries(&w, 5, 3);
    // Two batches accepted, then the service is down until the test says.
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let is_down = down.clone();
    let v = Vitally::start(move |n| {
        if n >= 2 && is_down.load(std::sync::atomic::Ordering::SeqCst) {
            (503, vec![])
        } else {
            (200, vec![])
        }
    });
    let o = load_vitally(&w, &v.url, KEY, &["--config", &config]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("HTTP 503, after 3 tries"), "{err}");
    assert!(
        err.contains("Delivered 10 of the 12 accounts left to send"),
        "{err}"
    );
    assert_eq!(v.batches(), vec![5, 5, 2, 2, 2]);
    assert_eq!(v.delivered().len(), 10);

    // Back up: the re-run sends only the two accounts not delivered.
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    let o = load_vitally(&w, &v.url, KEY, &["--config", &config]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("delivered 2 accounts") && stdout(&o).contains("10 already"));
    assert_eq!(v.batches(), vec![5, 5, 2, 2, 2, 2]);
    let mut delivered = v.delivered();
    delivered.sort();
    assert_eq!(
        delivered,
        orgs_of(&w),
        "every account exactly once over both loads"
    );
}

#[test]
fn a_wrong_vitally_key_is_refused_without_retrying_or_printing_it() {
    let w = one_run(4, 40);
    let v = Vitally::start(|_| (200, vec![]));
    let wrong = "wrong-key-123";
    let o = load_vitally(&w, &v.url, wrong, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("refused the API key (HTTP 401)"), "{err}");
    assert!(err.contains("Delivered 0 of the 4"), "{err}");
    assert!(!err.contains(wrong), "{err}");
    assert_eq!(v.batches().len(), 1, "a refused key is not retried");

    // No key at all: a usage error before anything is sent.
    let o = load_vitally(&w, &v.url, "", &[]);
    assert_fails(&o, 2, "VITALLY_API_KEY is not set");
    assert_eq!(v.batches().len(), 1);
}

#[test]
fn the_default_batch_is_at_most_100_and_a_dry_run_sends_nothing() {
    let w = one_run(130, 40);
    let v = Vitally::start(|_| (200, vec![]));

    let o = load_vitally(&w, &v.url, "", &["--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(v.batches().is_empty(), "a dry run sends nothing");
    let printed: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sizes: Vec<usize> = printed
        .iter()
        .map(|b| b.as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![100, 30]);
    assert!(
        stderr(&o).contains("would POST 130 accounts in 2 batches"),
        "{}",
        stderr(&o)
    );

    let o = load_vitally(&w, &v.url, KEY, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v.batches(), vec![100, 30]);
    // What was sent is what the dry run printed: the same messages, the same ids.
    let sent: Vec<serde_json::Value> = v
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(sent, printed);
}

#[test]
fn vitally_traits_are_data_and_an_unknown_one_is_refused() {
    let w = one_run(4, 40);
    let config = w.path().join("traits.toml");
    std::fs::write(
        &config,
        "[sinks.vitally]\ntraits = [\"health_score\", \"mrr\"]\n",
    )
    .unwrap();
    let o = load_vitally(
        &w,
        "http://127.0.0.1:9",
        "",
        &["--dry-run", "--config", config.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let batch: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    let keys: Vec<&String> = batch[0]["traits"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["health_score", "mrr"]);

    std::fs::write(
        &config,
        "[sinks.vitally]\ntraits = [\"health_score\", \"helth_label\"]\n",
    )
    .unwrap();
    let o = load_vitally(
        &w,
        "http://127.0.0.1:9",
        "",
        &["--dry-run", "--config", config.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("sinks.vitally.traits") && stderr(&o).contains("helth_label"),
        "{}",
        stderr(&o)
    );

    std::fs::write(&config, "[sinks.vitally]\nbatch_size = 101\n").unwrap();
    let o = load_vitally(
        &w,
        "http://127.0.0.1:9",
        "",
        &["--dry-run", "--config", config.to_str().unwrap()],
    );
    assert_fails(&o, 2, "sinks.vitally.batch_size");
}

#[test]
fn vitally_csv_upload_has_an_external_id_and_plain_cells() {
    let w = one_run(12, 60);
    let o = w.cmd(&["load", "vitally", "--out", "out", "--csv", "vitally.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(w.path().join("vitally.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[..3], ["externalId", "health_score", "health_label"]);
    assert_eq!(header.last(), Some(&"account_health_as_of"));
    assert!(header.contains(&"user_engagement_score") && header.contains(&"indicators"));
    let health = read_parquet(&w.out().join("health.parquet"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 12);
    for row in rows {
        let cells: Vec<&str> = row.split(',').collect();
        assert!(cells.last() == Some(&AS_OF), "{row}");
        let score = cell_f64(&health, "org_id", cells[0], "health_score");
        assert_eq!(cells[1].parse::<f64>().ok(), score, "{row}");
        assert!(!cells[1].contains('e'), "plain numbers: {row}");
        let risk = header.iter().position(|h| *h == "risk_count").unwrap();
        assert!(cells[risk].parse::<u32>().is_ok(), "whole counts: {row}");
    }
}
