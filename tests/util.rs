use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use polars::prelude::*;

pub const AS_OF: &str = "2026-11-23";

/// A per-test folder with `in/` (inputs) and `out/` (outputs).
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("in")).unwrap();
        Workdir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn input(&self) -> PathBuf {
        self.dir.path().join("in")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Writes `in/NAME.parquet`.
    pub fn write(&self, table: &str, df: &DataFrame) {
        write_parquet(&self.input().join(format!("{table}.parquet")), df);
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        self.cmd_env(args, &[])
    }

    /// The binary with `env` variables set.
    pub fn cmd_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        // The sinks' secrets only as a test gives them: a developer's DATABASE_URL
        // must never receive a test's load.
        Command::new(env!("CARGO_BIN_EXE_account-health"))
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("VITALLY_API_KEY")
            .envs(env.iter().copied())
            .current_dir(self.path())
            .output()
            .expect("runs the binary")
    }

    /// `generate` into in/ (events in PostHog's export shape); panics with stderr
    /// unless it succeeds.
    pub fn generate(&self, orgs: usize, days: u32, seed: u64) {
        self.generate_shape(orgs, days, seed, "posthog");
    }

    /// `generate --shape flat` into in/: the tests that rewrite event files or
    /// compare the page reader with polars' need flat files.
    pub fn generate_flat(&self, orgs: usize, days: u32, seed: u64) {
        self.generate_shape(orgs, days, seed, "flat");
    }

    fn generate_shape(&self, orgs: usize, days: u32, seed: u64, shape: &str) {
        let input = self.input();
        let (orgs, days, seed) = (orgs.to_string(), days.to_string(), seed.to_string());
        let o = self.cmd(&[
            "generate",
            "--quiet",
            "--out",
            input.to_str().unwrap(),
            "--orgs",
            &orgs,
            "--days",
            &days,
            "--seed",
            &seed,
            "--shape",
            shape,
        ]);
        assert!(
            o.status.success(),
            "generate failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `run` over in/ into out/ at AS_OF, quietly; panics with stderr unless it succeeds.
    pub fn run(&self, extra: &[&str]) -> Output {
        self.run_at(AS_OF, extra)
    }

    /// `run` at `as_of`, quietly, plus `extra`; panics with stderr unless it succeeds.
    pub fn run_at(&self, as_of: &str, extra: &[&str]) -> Output {
        let o = self.try_run_at(as_of, extra, &[]);
        assert!(
            o.status.success(),
            "run failed: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// `run` at `as_of`, quietly, plus `extra`, with `env` variables set, whatever
    /// the outcome.
    pub fn try_run_at(&self, as_of: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut args = vec!["--quiet", "--as-of", as_of];
        args.extend_from_slice(extra);
        self.try_run_env(&args, env)
    }

    /// `run --input in/ --out out/` plus `extra`, whatever the outcome.
    pub fn try_run(&self, extra: &[&str]) -> Output {
        self.try_run_env(extra, &[])
    }

    /// `try_run` with `env` variables set.
    pub fn try_run_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let (input, out) = (self.input(), self.out());
        let mut args = vec![
            "run",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.cmd_env(&args, env)
    }

    pub fn read(&self, table: &str) -> DataFrame {
        read_parquet(&self.out().join(format!("{table}.parquet")))
    }

    /// One cell of the health table.
    pub fn health_f64(&self, org: &str, column: &str) -> Option<f64> {
        let h = self.read("health");
        cell_f64(&h, "org_id", org, column)
    }

    pub fn health_str(&self, org: &str, column: &str) -> Option<String> {
        let h = self.read("health");
        let row = row_of(&h, "org_id", org);
        h.column(column)
            .unwrap()
            .str()
            .unwrap()
            .get(row)
            .map(str::to_string)
    }

    /// (value, band, points) of a metric from metric_scores.
    pub fn score(&self, org: &str, metric: &str) -> (Option<f64>, Option<String>, Option<f64>) {
        let ms = self.read("metric_scores");
        let df = ms
            .lazy()
            .filter(
                col("org_id")
                    .eq(lit(org))
                    .and(col("metric").eq(lit(metric))),
            )
            .collect()
            .unwrap();
        assert_eq!(df.height(), 1, "one row for {org}/{metric}");
        (
            df.column("value").unwrap().f64().unwrap().get(0),
            df.column("band")
                .unwrap()
                .str()
                .unwrap()
                .get(0)
                .map(str::to_string),
            df.column("points").unwrap().f64().unwrap().get(0),
        )
    }
}

pub fn write_parquet(path: &Path, df: &DataFrame) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    ParquetWriter::new(f).finish(&mut df.clone()).unwrap();
}

pub fn read_parquet(path: &Path) -> DataFrame {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(f).finish().unwrap()
}

/// The non-null values of a string column, in row order.
pub fn strings(df: &DataFrame, column: &str) -> Vec<String> {
    df.column(column)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(str::to_string)
        .collect()
}

pub fn row_of(df: &DataFrame, key: &str, value: &str) -> usize {
    df.column(key)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .position(|v| v == Some(value))
        .unwrap_or_else(|| panic!("no row with {key} = {value}"))
}

pub fn cell_f64(df: &DataFrame, key: &str, value: &str, column: &str) -> Option<f64> {
    let row = row_of(df, key, value);
    df.column(column)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .get(row)
}

/// Microseconds since the epoch of "YYYY-MM-DD HH:MM" (UTC).
pub fn us(s: &str) -> i64 {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&format!("{s} 00:00"), "%Y-%m-%d %H:%M"))
        .unwrap_or_else(|_| panic!("bad test time {s}"));
    t.and_utc().timestamp_micros()
}

pub fn days(s: &str) -> i32 {
    (us(s) / 86_400_000_000) as i32
}

/// A string column from one field of each row.
fn text<'a, R, T: Into<Option<&'a str>>>(
    name: &str,
    rows: &'a [R],
    field: impl Fn(&'a R) -> T,
) -> Column {
    let values: Vec<Option<&str>> = rows.iter().map(|r| field(r).into()).collect();
    Column::new(name.into(), values)
}

fn ts_column(name: &str, values: Vec<Option<i64>>) -> Column {
    Column::new(name.into(), values)
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .unwrap()
}

/// events: (org_id, distinct_id, event, "YYYY-MM-DD HH:MM", current_url)
pub fn events(rows: &[(&str, &str, &str, &str, Option<&str>)]) -> DataFrame {
    DataFrame::new_infer_height(vec![
        ts_column("timestamp", rows.iter().map(|r| Some(us(r.3))).collect()),
        text("event", rows, |r| r.2),
        text("distinct_id", rows, |r| r.1),
        text("org_id", rows, |r| r.0),
        text("current_url", rows, |r| r.4),
    ])
    .unwrap()
}

/// members: (org_id, distinct_id, role, joined_at, removed_at)
pub fn members(rows: &[(&str, &str, &str, &str, Option<&str>)]) -> DataFrame {
    DataFrame::new_infer_height(vec![
        text("org_id", rows, |r| r.0),
        text("distinct_id", rows, |r| r.1),
        Column::new(
            "email".into(),
            rows.iter()
                .map(|r| format!("{}@example.com", r.1))
                .collect::<Vec<_>>(),
        ),
        text("role", rows, |r| r.2),
        ts_column("joined_at", rows.iter().map(|r| Some(us(r.3))).collect()),
        ts_column("removed_at", rows.iter().map(|r| r.4.map(us)).collect()),
    ])
    .unwrap()
}

/// usage: (org_id, "YYYY-MM-DD", [(counter, value)]); counters absent from a row are 0.
/// One usage row: (org_id, "YYYY-MM-DD", [(counter, value)]).
pub type UsageRow<'a> = (&'a str, &'a str, &'a [(&'a str, i64)]);

pub fn usage(rows: &[UsageRow]) -> DataFrame {
    let mut counters: Vec<&str> = Vec::new();
    for r in rows {
        for (c, _) in r.2 {
            if !counters.contains(c) {
                counters.push(c);
            }
        }
    }
    let mut cols = vec![
        text("org_id", rows, |r| r.0),
        Column::new(
            "date".into(),
            rows.iter().map(|r| days(r.1)).collect::<Vec<_>>(),
        )
        .cast(&DataType::Date)
        .unwrap(),
    ];
    for c in counters {
        let v: Vec<i64> = rows
            .iter()
            .map(|r| r.2.iter().find(|(n, _)| *n == c).map_or(0, |(_, v)| *v))
            .collect();
        cols.push(Column::new(c.into(), v));
    }
    DataFrame::new_infer_height(cols).unwrap()
}

/// tickets: (org_id, ticket_id, created_at, priority, solved_at)
pub fn tickets(rows: &[(&str, &str, &str, &str, Option<&str>)]) -> DataFrame {
    DataFrame::new_infer_height(vec![
        text("org_id", rows, |r| r.0),
        text("ticket_id", rows, |r| r.1),
        ts_column("created_at", rows.iter().map(|r| Some(us(r.2))).collect()),
        text("priority", rows, |r| r.3),
        ts_column("solved_at", rows.iter().map(|r| r.4.map(us)).collect()),
    ])
    .unwrap()
}

/// meetings: (org_id, started_at)
pub fn meetings(rows: &[(&str, &str)]) -> DataFrame {
    DataFrame::new_infer_height(vec![
        text("org_id", rows, |r| r.0),
        ts_column("started_at", rows.iter().map(|r| Some(us(r.1))).collect()),
    ])
    .unwrap()
}

/// accounts: (org_id, name, csm)
pub fn accounts(rows: &[(&str, &str, &str)]) -> DataFrame {
    DataFrame::new_infer_height(vec![
        text("org_id", rows, |r| r.0),
        text("name", rows, |r| r.1),
        text("csm", rows, |r| r.2),
    ])
    .unwrap()
}

/// The smallest valid input: one org `a` with one member who has no events.
pub fn minimal(w: &Workdir) {
    w.write(
        "members",
        &members(&[("a", "a1", "owner", "2026-01-01", None)]),
    );
    w.write(
        "events",
        &events(&[("zz", "nobody", "x", "2026-11-01", None)]),
    );
    w.write(
        "usage",
        &usage(&[("a", "2026-11-01", &[("event_count_in_period", 1)])]),
    );
}

pub fn assert_close(got: Option<f64>, want: f64, what: &str) {
    let g = got.unwrap_or_else(|| panic!("{what}: got null, want {want}"));
    assert!((g - want).abs() < 1e-9, "{what}: got {g}, want {want}");
}

/// accounts with money and renewal: (org_id, mrr, forecasted_mrr, plan, renewal_date)
pub fn accounts_full(rows: &[(&str, f64, f64, &str, &str)]) -> DataFrame {
    DataFrame::new_infer_height(vec![
        text("org_id", rows, |r| r.0),
        Column::new(
            "name".into(),
            rows.iter().map(|r| r.0.to_uppercase()).collect::<Vec<_>>(),
        ),
        Column::new("mrr".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
        Column::new(
            "forecasted_mrr".into(),
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        ),
        text("plan", rows, |r| r.3),
        Column::new(
            "renewal_date".into(),
            rows.iter().map(|r| days(r.4)).collect::<Vec<_>>(),
        )
        .cast(&DataType::Date)
        .unwrap(),
    ])
    .unwrap()
}

/// payments: (org_id, occurred_at, status)
pub fn payments(rows: &[(&str, &str, &str)]) -> DataFrame {
    DataFrame::new_infer_height(vec![
        text("org_id", rows, |r| r.0),
        ts_column("occurred_at", rows.iter().map(|r| Some(us(r.1))).collect()),
        text("status", rows, |r| r.2),
    ])
    .unwrap()
}

/// role_changes: (org_id, distinct_id, changed_at, old_role, new_role)
/// One role change: (org_id, distinct_id, changed_at, old_role, new_role).
pub type RoleChangeRow<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

pub fn role_changes(rows: &[RoleChangeRow]) -> DataFrame {
    DataFrame::new_infer_height(vec![
        text("org_id", rows, |r| r.0),
        text("distinct_id", rows, |r| r.1),
        ts_column("changed_at", rows.iter().map(|r| Some(us(r.2))).collect()),
        text("old_role", rows, |r| r.3),
        text("new_role", rows, |r| r.4),
    ])
    .unwrap()
}

/// One member per org (`<org>1`, owner since January), for indicator fixtures.
pub fn one_member_each(orgs: &[&str]) -> DataFrame {
    let ids: Vec<String> = orgs.iter().map(|o| format!("{o}1")).collect();
    let rows: Vec<(&str, &str, &str, &str, Option<&str>)> = orgs
        .iter()
        .zip(&ids)
        .map(|(o, id)| (*o, id.as_str(), "owner", "2026-01-01", None))
        .collect();
    members(&rows)
}

/// The fired indicators as (org_id, indicator, product, value), sorted.
pub fn fired(w: &Workdir) -> Vec<(String, String, Option<String>, Option<f64>)> {
    let df = w.read("indicators");
    (0..df.height())
        .map(|r| {
            let s = |c: &str| {
                df.column(c)
                    .unwrap()
                    .str()
                    .unwrap()
                    .get(r)
                    .map(str::to_string)
            };
            (
                s("org_id").unwrap(),
                s("indicator").unwrap(),
                s("product"),
                df.column("value").unwrap().f64().unwrap().get(r),
            )
        })
        .collect()
}

/// The orgs for which `indicator` fired.
pub fn fired_for(w: &Workdir, indicator: &str) -> Vec<String> {
    fired(w)
        .into_iter()
        .filter(|f| f.1 == indicator)
        .map(|f| f.0)
        .collect()
}

/// The message of one fired indicator.
pub fn message(w: &Workdir, org: &str, indicator: &str) -> String {
    let df = w.read("indicators");
    (0..df.height())
        .find(|&r| {
            let s = |c: &str| {
                df.column(c)
                    .unwrap()
                    .str()
                    .unwrap()
                    .get(r)
                    .map(str::to_string)
            };
            s("org_id").as_deref() == Some(org) && s("indicator").as_deref() == Some(indicator)
        })
        .map(|r| {
            df.column("message")
                .unwrap()
                .str()
                .unwrap()
                .get(r)
                .unwrap()
                .to_string()
        })
        .unwrap_or_else(|| panic!("{indicator} did not fire for {org}"))
}

/// Orgs with one member each, no member events and one event counted in usage on
/// 2026-11-01. Each scores: user_engagement 0 (never seen, 0% active, 0 engaging),
/// product_experience 10 (0 docs visits; no tickets table), company_engagement 0
/// (1 product; no meetings table), product_analytics 0 (0% analyzers, the decrease
/// is null), so health_score = (15*0 + 5*10 + 5*0 + 33*0) / 58 = 50/58.
pub fn identical_quiet_orgs(w: &Workdir, orgs: &[&str]) {
    w.write("members", &one_member_each(orgs));
    w.write(
        "events",
        &events(&[("zz", "nobody", "x", "2026-11-01", None)]),
    );
    let rows: Vec<UsageRow> = orgs
        .iter()
        .map(|o| (*o, "2026-11-01", &[("event_count_in_period", 1)][..]))
        .collect();
    w.write("usage", &usage(&rows));
}

/// A self-contained page: nothing to fetch (no source, stylesheet, script or
/// https link), and no http URL but the SVG namespace.
pub fn assert_fetches_nothing(html: &str) {
    for outside in ["src=", "url(", "@import", "<link", "<script", "https://"] {
        assert!(!html.contains(outside), "{outside}");
    }
    assert_eq!(
        html.matches("http://").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "only the SVG namespace names a URL"
    );
}
