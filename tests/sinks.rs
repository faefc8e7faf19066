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
    for t in [
        "health",
        "metric_scores",
        "indicators",
        "metric_changes",
        "alerts",
        "users",
        "trends",
        "deployment",
    ] {
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
    for t in [
        "health",
        "metric_scores",
        "indicators",
        "alerts",
        "users",
        "trends",
        "deployment",
    ] {
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
    let after = db_counts(&mut c);
    for (key, n) in &counts {
        if key.starts_with(|ch: char| ch.is_alphabetic()) && key.contains("_history") {
            assert_eq!(
                after[key], *n,
                "{key}: the entry's rows replaced, not added"
            );
        }
    }
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
fn a_failed_postgres_load_leaves_the_database_as_it_was() {
    let w = Workdir::new();
    w.generate(12, 60, 4);
    w.run_at(EARLIER, &[]);
    let pg = PgServer::start();
    let o = load_postgres(&w, &pg.url(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut c = pg.client();
    let before = db_counts(&mut c);

    // A column of indicators_history changed by hand: the next load fails when it
    // reaches that table, after it has replaced the current tables and loaded
    // health_history, and must undo all of it.
    c.batch_execute(
        "ALTER TABLE account_health.indicators_history ALTER COLUMN message TYPE integer USING NULL",
    )
    .unwrap();
    w.run(&[]);
    let o = load_postgres(&w, &pg.url(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("indicators_history.message") && err.contains("integer"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
    assert_eq!(db_counts(&mut c), before, "rolled back");
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM account_health.loads"),
        1
    );
}

#[test]
fn postgres_connection_problems_are_clear_errors_without_the_password() {
    let w = Workdir::new();
    w.generate(4, 40, 4);
    w.run(&[]);

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
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("nothing-here/manifest.json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_wrong_postgres_password_is_refused_by_the_server_and_not_printed() {
    let w = Workdir::new();
    w.generate(4, 40, 4);
    w.run(&[]);
    let pg = PgServer::start();
    let wrong = "not-the-Password-77";
    let url = format!("postgres://postgres:{wrong}@127.0.0.1:{}/postgres", pg.port);
    let o = load_postgres(&w, &url, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("password authentication failed"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains(wrong), "{}", stderr(&o));
}
