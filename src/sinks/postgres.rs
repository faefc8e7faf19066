//! `load postgres`: a finished run into PostgreSQL, where Metabase reads it.
//!
//! One transaction per load, so a reader (or a failed load) sees the database as it
//! was or as the load left it, never in between:
//! - the current tables (`output::TABLE_NAMES`) are replaced by the run's: emptied and
//!   refilled when their columns are the run's, dropped and created again when a new
//!   version of the tool changed them; a table the run lacks is emptied, so the
//!   current tables never mix two runs;
//! - the history tables (`<table>_history` for `publish::HISTORY_TABLES`) gain each
//!   history entry of `OUT/history/` (one as_of each) that the database does not hold
//!   as it is: an entry's rows replace the rows of its as_of. Which entries are loaded
//!   is recorded in `history_loads` with a fingerprint of the entry's files (names,
//!   sizes, modification times), so loading the same run twice adds nothing, a
//!   re-run of an as_of is loaded again, and a backfill's entries all arrive with the
//!   next load. Entries pruned from `OUT/history` stay in the database;
//! - `loads` logs each load (when, which run, its as_of, rows).
//!
//! History is loaded first (row locks only), the current tables last, so Metabase's
//! readers wait only for the few statements that replace them. Rows go in with
//! binary COPY, typed from the Parquet columns (text, double precision, bigint, date,
//! timestamptz, boolean), so values arrive exact. Two loads into one schema take
//! turns (a transaction-level advisory lock); a lock held elsewhere is waited for
//! `LOCK_TIMEOUT_SECONDS`, and the whole connection must be made within the connect
//! timeout, so nothing hangs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::config::{Host, SslMode};
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls, Transaction};

use crate::error::InputError;
use crate::publish;
use crate::sinks::{error_chain, redact, FinishedRun};
use crate::time::AsOf;

/// How long a connection attempt may take when the URL does not say
/// (`connect_timeout`): an unreachable server is an error, not a hang.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the load waits for a lock another session holds before it fails.
pub const LOCK_TIMEOUT_SECONDS: u32 = 60;

/// The bookkeeping tables, beside the run's.
const LOADS: &str = "loads";
const HISTORY_LOADS: &str = "history_loads";

/// Where to load: a parsed connection URL and a description of it without the password.
pub struct Target {
    config: Config,
    /// `user@host:port/dbname`, for messages.
    pub described: String,
    password: String,
}

impl Target {
    /// Parses a `postgres://` URL (or a key=value connection string). The error never
    /// quotes the URL, which may hold a password.
    pub fn parse(url: &str) -> Result<Target, InputError> {
        // The parse error names the option, never its value.
        let mut config: Config = url
            .parse()
            .map_err(|e: postgres::Error| InputError::Usage {
                problem: format!(
                    "--url / DATABASE_URL is not a PostgreSQL connection URL: {}",
                    error_chain(e)
                ),
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("account-health");
        }
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
        let described = format!(
            "{}@{}:{}/{}",
            config.get_user().unwrap_or("(default user)"),
            if hosts.is_empty() {
                "localhost".into()
            } else {
                hosts.join(",")
            },
            if ports.is_empty() {
                "5432".into()
            } else {
                ports.join(",")
            },
            config.get_dbname().unwrap_or("(default database)"),
        );
        Ok(Target {
            config,
            described,
            password,
        })
    }

    /// Connects: TLS when the URL asks for it (`sslmode=require`, the server's
    /// certificate checked against the system's roots), plain otherwise. The whole
    /// connection (TCP, TLS, startup, authentication) must be done within the
    /// connect timeout: the client's own timeout covers only the TCP connect, and a
    /// server that accepts and then says nothing would otherwise hang the load.
    fn connect(&self) -> Result<Client> {
        let limit = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT);
        let config = self.config.clone();
        let tls = if config.get_ssl_mode() == SslMode::Require {
            Some(tls()?)
        } else {
            None
        };
        let (send, receive) = std::sync::mpsc::channel();
        // Left behind if it does not finish in time; the process ends soon after.
        std::thread::spawn(move || {
            let client = match tls {
                Some(tls) => config.connect(tls),
                None => config.connect(NoTls),
            };
            let _ = send.send(client);
        });
        let failed = |why: String| {
            anyhow::anyhow!(self.redacted(format!(
                "cannot connect to PostgreSQL at {}: {why}",
                self.described
            )))
        };
        match receive.recv_timeout(limit) {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(failed(error_chain(e))),
            Err(_) => Err(failed(format!(
                "no answer within {} s (connect_timeout)",
                limit.as_secs_f64()
            ))),
        }
    }

    fn redacted(&self, text: String) -> String {
        redact(&text, &self.password)
    }
}

/// A rustls connector trusting the system's certificate roots.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A certificate the system lists but rustls cannot use is skipped, as a
        // browser would; the server's chain must still verify against the rest.
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("setting up TLS")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Checks a schema name: PostgreSQL's identifiers are at most 63 bytes.
pub fn check_schema(schema: &str) -> Result<(), InputError> {
    if schema.is_empty() || schema.len() > 63 || schema.contains('\0') {
        return Err(InputError::Usage {
            problem: format!("--schema {schema:?}: a PostgreSQL name of 1 to 63 bytes"),
        });
    }
    Ok(())
}

/// What one load did: rows per table, in load order.
pub struct Loaded {
    pub tables: Vec<(String, u64)>,
    /// The history entries (as_of dates) loaded this time.
    pub history_entries: Vec<AsOf>,
}

/// Loads the current run of `out` and its history into `schema`, in one transaction.
pub fn load(target: &Target, out: &Path, schema: &str) -> Result<Loaded> {
    check_schema(schema)?;
    let run = crate::sinks::open(out)?;
    // The current tables are read before the database is touched: a bad or missing
    // file fails first (a run written as CSV only has no Parquet to load).
    run.required("health")?;
    let mut current = Vec::new();
    for name in crate::output::TABLE_NAMES {
        current.push((name, run.table(name)?));
    }
    let entries = history_entries(out, &run)?;
    let mut client = target.connect()?;
    in_transaction(&mut client, schema, &run, &current, &entries).map_err(|e| {
        // A bad file keeps its kind (exit 2); anything else carries the server's
        // words, through the password guard.
        if e.chain().any(|c| c.downcast_ref::<InputError>().is_some()) {
            e
        } else {
            anyhow::anyhow!(target.redacted(format!("{e:#}")))
        }
    })
}

/// A history entry: its as_of, its folder and the fingerprint of its files.
struct Entry {
    as_of: AsOf,
    dir: PathBuf,
    fingerprint: String,
}

/// The run's history entries; for an output folder without history (made before
/// it existed), the run itself stands for the entry of its as_of.
fn history_entries(out: &Path, run: &FinishedRun) -> Result<Vec<Entry>> {
    let dates = publish::history_dates(out);
    if dates.is_empty() {
        return Ok(vec![Entry {
            as_of: run.as_of,
            dir: run.dir.clone(),
            fingerprint: fingerprint(&run.dir)?,
        }]);
    }
    dates
        .into_iter()
        .map(|as_of| {
            let dir = out
                .join(publish::HISTORY)
                .join(publish::history_folder(&as_of));
            Ok(Entry {
                as_of,
                fingerprint: fingerprint(&dir)?,
                dir,
            })
        })
        .collect()
}

/// The fingerprint of a history entry: its tables' names, sizes and modification
/// times. A re-run of the as_of writes new files, so a new fingerprint.
fn fingerprint(dir: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for name in publish::HISTORY_TABLES {
        let path = dir.join(format!("{name}.parquet"));
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        hash.update(format!("{name}\0{}\0{modified}\n", meta.len()));
    }
    Ok(format!("{:x}", hash.finalize()))
}

fn in_transaction(
    client: &mut Client,
    schema: &str,
    run: &FinishedRun,
    current: &[(&str, Option<DataFrame>)],
    entries: &[Entry],
) -> Result<Loaded> {
    let s = ident(schema);
    let mut tx = client.transaction()?;
    // A lock held elsewhere (a long Metabase query on a table to be emptied, another
    // load) is waited for this long, then the load fails instead of hanging.
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'"
    ))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('account-health load ' || $1))",
        &[&schema],
    )?;
    // CREATE SCHEMA IF NOT EXISTS needs the right to create schemas even when the
    // schema exists: a loader owning a schema a DBA made for it has no such right.
    let exists = !tx
        .query("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])?
        .is_empty();
    if !exists {
        tx.batch_execute(&format!("CREATE SCHEMA {s}"))?;
    }
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {s}.{HISTORY_LOADS} (
             as_of date PRIMARY KEY, fingerprint text NOT NULL, loaded_at timestamptz NOT NULL);
         CREATE TABLE IF NOT EXISTS {s}.{LOADS} (
             loaded_at timestamptz NOT NULL, run text NOT NULL, as_of date NOT NULL,
             tables_rows bigint NOT NULL, history_entries bigint NOT NULL);"
    ))?;

    // History first: its upserts take row locks only, so Metabase keeps reading the
    // current tables until the few statements that replace them, last.
    let loaded: std::collections::HashMap<NaiveDate, String> = tx
        .query(
            &format!("SELECT as_of, fingerprint FROM {s}.{HISTORY_LOADS}"),
            &[],
        )?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut history_rows = vec![0u64; publish::HISTORY_TABLES.len()];
    let mut history_entries = Vec::new();
    for entry in entries {
        if loaded.get(&entry.as_of.date) == Some(&entry.fingerprint) {
            continue;
        }
        for (i, name) in publish::HISTORY_TABLES.iter().enumerate() {
            // A table missing from an entry (a run replacing it meanwhile) fails the
            // load rather than record the entry as loaded without it.
            let frame = crate::sinks::required_table(&entry.dir, name)?;
            let frame = with_as_of(frame, &entry.as_of)?;
            let table = format!("{name}_history");
            (|| -> Result<()> {
                ensure_history_table(&mut tx, schema, &table, &frame)?;
                tx.execute(
                    &format!("DELETE FROM {s}.{} WHERE as_of = $1", ident(&table)),
                    &[&entry.as_of.date],
                )?;
                history_rows[i] += copy_rows(&mut tx, schema, &table, &frame)?;
                Ok(())
            })()
            .with_context(|| format!("loading {schema}.{table} for as_of {}", entry.as_of.iso()))?;
        }
        tx.execute(
            &format!(
                "INSERT INTO {s}.{HISTORY_LOADS} (as_of, fingerprint, loaded_at)
                 VALUES ($1, $2, now())
                 ON CONFLICT (as_of) DO UPDATE
                 SET fingerprint = EXCLUDED.fingerprint, loaded_at = EXCLUDED.loaded_at"
            ),
            &[&entry.as_of.date, &entry.fingerprint],
        )?;
        history_entries.push(entry.as_of);
    }

    let mut tables = Vec::new();
    for (name, frame) in current {
        let rows = match frame {
            Some(frame) => replace_table(&mut tx, schema, name, frame),
            None => empty_if_present(&mut tx, schema, name).map(|()| 0),
        }
        .with_context(|| format!("loading {schema}.{name}"))?;
        tables.push((name.to_string(), rows));
    }
    for (name, rows) in publish::HISTORY_TABLES.iter().zip(history_rows) {
        tables.push((format!("{name}_history"), rows));
    }
    let total: u64 = tables.iter().map(|(_, n)| n).sum();
    tx.execute(
        &format!(
            "INSERT INTO {s}.{LOADS} (loaded_at, run, as_of, tables_rows, history_entries)
             VALUES (now(), $1, $2, $3, $4)"
        ),
        &[
            &run.id,
            &run.as_of.date,
            &(total as i64),
            &(history_entries.len() as i64),
        ],
    )?;
    tx.commit()?;
    Ok(Loaded {
        tables,
        history_entries,
    })
}

/// A name quoted as a PostgreSQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A column as PostgreSQL stores it: its name, its type's name as
/// `information_schema` gives it (also valid in DDL), and the wire type.
#[derive(Debug, Clone, PartialEq)]
struct PgColumn {
    name: String,
    sql_type: &'static str,
    wire: Type,
}

/// The PostgreSQL type of each output column type.
fn pg_column(table: &str, name: &str, dtype: &DataType) -> Result<PgColumn> {
    let (sql_type, wire) = match dtype {
        DataType::Boolean => ("boolean", Type::BOOL),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ("bigint", Type::INT8),
        DataType::Float32 | DataType::Float64 => ("double precision", Type::FLOAT8),
        DataType::String | DataType::Categorical(..) | DataType::Enum(..) | DataType::Null => {
            ("text", Type::TEXT)
        }
        DataType::Date => ("date", Type::DATE),
        DataType::Datetime(..) => ("timestamp with time zone", Type::TIMESTAMPTZ),
        other => {
            anyhow::bail!("{table}.{name}: column type {other} has no PostgreSQL type in this load")
        }
    };
    Ok(PgColumn {
        name: name.to_string(),
        sql_type,
        wire,
    })
}

fn pg_columns(table: &str, frame: &DataFrame) -> Result<Vec<PgColumn>> {
    frame
        .columns()
        .iter()
        .map(|c| pg_column(table, c.name(), c.dtype()))
        .collect()
}

/// The columns of `schema.table` in the database, in order; empty when there is no
/// such table.
fn existing_columns(
    tx: &mut Transaction,
    schema: &str,
    table: &str,
) -> Result<Vec<(String, String)>> {
    Ok(tx
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            &[&schema, &table],
        )?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

fn create_table(
    tx: &mut Transaction,
    schema: &str,
    table: &str,
    columns: &[PgColumn],
) -> Result<()> {
    let list: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", ident(&c.name), c.sql_type))
        .collect();
    tx.batch_execute(&format!(
        "CREATE TABLE {}.{} ({})",
        ident(schema),
        ident(table),
        list.join(", ")
    ))?;
    Ok(())
}

/// Replaces a current table's rows by the frame's.
fn replace_table(
    tx: &mut Transaction,
    schema: &str,
    table: &str,
    frame: &DataFrame,
) -> Result<u64> {
    let columns = pg_columns(table, frame)?;
    let wanted: Vec<(String, String)> = columns
        .iter()
        .map(|c| (c.name.clone(), c.sql_type.to_string()))
        .collect();
    let existing = existing_columns(tx, schema, table)?;
    let qualified = format!("{}.{}", ident(schema), ident(table));
    if existing.is_empty() {
        create_table(tx, schema, table, &columns)?;
    } else if existing == wanted {
        tx.batch_execute(&format!("TRUNCATE {qualified}"))?;
    } else {
        // A version of the tool with other columns: the table is made again (a view
        // a user built on it makes PostgreSQL refuse, and the load rolls back).
        tx.batch_execute(&format!("DROP TABLE {qualified}"))?;
        create_table(tx, schema, table, &columns)?;
    }
    copy_rows(tx, schema, table, frame)
}

fn empty_if_present(tx: &mut Transaction, schema: &str, table: &str) -> Result<()> {
    if !existing_columns(tx, schema, table)?.is_empty() {
        tx.batch_execute(&format!("TRUNCATE {}.{}", ident(schema), ident(table)))?;
    }
    Ok(())
}

/// Creates a history table, or adds the columns a newer run has; a column whose
/// type changed is an error (history is never dropped).
fn ensure_history_table(
    tx: &mut Transaction,
    schema: &str,
    table: &str,
    frame: &DataFrame,
) -> Result<()> {
    let columns = pg_columns(table, frame)?;
    let existing = existing_columns(tx, schema, table)?;
    if existing.is_empty() {
        create_table(tx, schema, table, &columns)?;
        tx.batch_execute(&format!(
            "CREATE INDEX ON {}.{} (as_of)",
            ident(schema),
            ident(table)
        ))?;
        return Ok(());
    }
    for c in &columns {
        match existing.iter().find(|(name, _)| *name == c.name) {
            Some((_, t)) if t == c.sql_type => {}
            Some((_, t)) => anyhow::bail!(
                "{schema}.{table}.{}: the database holds it as {t}, this run as {}; \
                 history is never dropped, so change the column by hand (or load into another --schema)",
                c.name,
                c.sql_type
            ),
            None => tx.batch_execute(&format!(
                "ALTER TABLE {}.{} ADD COLUMN {} {}",
                ident(schema),
                ident(table),
                ident(&c.name),
                c.sql_type
            ))?,
        }
    }
    Ok(())
}

/// A history table's frame with its as_of: the entry's date, first, when the table
/// has none of its own (`metric_scores`).
fn with_as_of(frame: DataFrame, as_of: &AsOf) -> Result<DataFrame> {
    if frame
        .get_column_names()
        .iter()
        .any(|n| n.as_str() == "as_of")
    {
        return Ok(frame);
    }
    let days =
        Column::new("as_of".into(), vec![as_of.day; frame.height()]).cast(&DataType::Date)?;
    let mut columns = vec![days];
    columns.extend(frame.columns().iter().cloned());
    Ok(DataFrame::new(frame.height(), columns)?)
}

/// One column's values, typed for the wire.
enum Values {
    Bool(Vec<Option<bool>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Date(Vec<Option<NaiveDate>>),
    Instant(Vec<Option<DateTime<Utc>>>),
}

impl Values {
    fn of(table: &str, column: &Column, wire: &Type) -> Result<Values> {
        let series = column.as_materialized_series();
        let at = || format!("{table}.{}", column.name());
        Ok(match *wire {
            Type::BOOL => Values::Bool(series.bool()?.iter().collect()),
            Type::INT8 => {
                let cast = series.strict_cast(&DataType::Int64).map_err(|_| {
                    anyhow::anyhow!("{}: a value does not fit PostgreSQL's bigint", at())
                })?;
                Values::Int(cast.i64()?.iter().collect())
            }
            Type::FLOAT8 => Values::Float(series.cast(&DataType::Float64)?.f64()?.iter().collect()),
            Type::TEXT => Values::Text(
                series
                    .cast(&DataType::String)?
                    .str()?
                    .iter()
                    .map(|v| v.map(str::to_owned))
                    .collect(),
            ),
            Type::DATE => Values::Date(
                series
                    .cast(&DataType::Int32)?
                    .i32()?
                    .iter()
                    .map(|d| d.map(|d| AsOf::from_day(d).date))
                    .collect(),
            ),
            Type::TIMESTAMPTZ => {
                let us = series.cast(&DataType::Datetime(TimeUnit::Microseconds, None))?;
                let us = us.cast(&DataType::Int64)?;
                let mut values = Vec::with_capacity(us.len());
                for v in us.i64()?.iter() {
                    values.push(match v {
                        Some(us) => {
                            Some(DateTime::from_timestamp_micros(us).with_context(|| {
                                format!("{}: instant {us} µs is out of range", at())
                            })?)
                        }
                        None => None,
                    });
                }
                Values::Instant(values)
            }
            _ => unreachable!("pg_column gives only these types"),
        })
    }

    fn at(&self, row: usize) -> &(dyn ToSql + Sync) {
        match self {
            Values::Bool(v) => &v[row],
            Values::Int(v) => &v[row],
            Values::Float(v) => &v[row],
            Values::Text(v) => &v[row],
            Values::Date(v) => &v[row],
            Values::Instant(v) => &v[row],
        }
    }
}

/// Sends the frame's rows into `schema.table` with binary COPY, naming the columns
/// (a history table's columns the frame lacks stay null).
fn copy_rows(tx: &mut Transaction, schema: &str, table: &str, frame: &DataFrame) -> Result<u64> {
    let columns = pg_columns(table, frame)?;
    let values: Vec<Values> = frame
        .columns()
        .iter()
        .zip(&columns)
        .map(|(c, pg)| Values::of(table, c, &pg.wire))
        .collect::<Result<_>>()?;
    let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
    let types: Vec<Type> = columns.iter().map(|c| c.wire.clone()).collect();
    let sql = format!(
        "COPY {}.{} ({}) FROM STDIN (FORMAT binary)",
        ident(schema),
        ident(table),
        names.join(", ")
    );
    let mut writer = BinaryCopyInWriter::new(tx.copy_in(&sql)?, &types);
    let mut row: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(values.len());
    for i in 0..frame.height() {
        row.clear();
        row.extend(values.iter().map(|v| v.at(i)));
        writer.write(&row)?;
    }
    Ok(writer.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_described_without_its_password() {
        let t = Target::parse("postgres://ana:s3cr3t@db.example:6543/metabase").unwrap();
        assert_eq!(t.described, "ana@db.example:6543/metabase");
        assert!(!t.described.contains("s3cr3t"));
        assert_eq!(t.redacted("password s3cr3t".into()), "password [redacted]");
    }

    #[test]
    fn a_bad_url_is_a_usage_error_naming_the_option_not_its_value() {
        let e = Target::parse("postgres://ana:s3cr3t@db:notaport/x")
            .err()
            .unwrap();
        assert!(matches!(e, InputError::Usage { .. }));
        let text = e.to_string();
        assert!(text.contains("`port`"), "{text}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("notaport"),
            "{text}"
        );
        let e = Target::parse("postgres://ana:s3cr3t@db/x?sslrootcert=/ca.pem")
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("unknown option `sslrootcert`"),
            "{e}"
        );
    }

    #[test]
    fn output_types_map_to_postgres_types() {
        let t = |d: DataType| pg_column("t", "c", &d).unwrap().sql_type;
        assert_eq!(t(DataType::String), "text");
        assert_eq!(t(DataType::Float64), "double precision");
        assert_eq!(t(DataType::UInt32), "bigint");
        assert_eq!(t(DataType::Date), "date");
        assert_eq!(t(DataType::Boolean), "boolean");
        assert_eq!(
            t(DataType::Datetime(TimeUnit::Microseconds, None)),
            "timestamp with time zone"
        );
        assert!(pg_column("t", "c", &DataType::Binary).is_err());
    }

    #[test]
    fn values_keep_their_type_on_the_wire() {
        let frame = df!(
            "flag" => [Some(true), None],
            "big" => [Some(u64::from(u32::MAX) + 1), None],
            "day" => [Some(20415i32), None],
        )
        .unwrap();
        let frame = frame
            .lazy()
            .with_columns([
                col("day").cast(DataType::Date),
                (col("day").cast(DataType::Int64) * lit(86_400_000i64))
                    .cast(DataType::Datetime(TimeUnit::Milliseconds, None))
                    .alias("at"),
            ])
            .collect()
            .unwrap();
        let values = |name: &str| {
            let c = frame.column(name).unwrap();
            Values::of("t", c, &pg_column("t", name, c.dtype()).unwrap().wire).unwrap()
        };
        assert!(matches!(values("flag"), Values::Bool(v) if v == [Some(true), None]));
        assert!(matches!(values("big"), Values::Int(v) if v == [Some(4_294_967_296), None]));
        let day = NaiveDate::from_ymd_opt(2025, 11, 23).unwrap();
        assert!(matches!(values("day"), Values::Date(v) if v == [Some(day), None]));
        let at = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert!(matches!(values("at"), Values::Instant(v) if v == [Some(at), None]));
        // A u64 beyond bigint is an error naming the column, not a wrapped number.
        let huge = df!("huge" => [u64::MAX]).unwrap();
        let c = huge.column("huge").unwrap();
        let e = Values::of("t", c, &Type::INT8).err().unwrap();
        assert!(e.to_string().contains("t.huge"), "{e}");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("health"), "\"health\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
