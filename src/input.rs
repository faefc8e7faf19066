//! Loading the input tables (SPEC 2): finds each table's files, checks every file's
//! schema, and normalises types so that the later stages see one shape per table.
//!
//! After this stage: strings are plain `String` (dictionary/categorical columns are
//! decoded once here), instants are i64 microseconds since the epoch (UTC), dates are
//! i32 days since the epoch, money and usage counters are f64. Every bad-input case
//! becomes an `InputError` naming the file and column. This module computes no
//! metric; the data-quality counts live in `quality`. The events are only checked
//! here (`EventsScan`); the events pass reads them, and `EventsScan::blame` names
//! the file behind a problem it meets.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::InputError;
use crate::ingestion_rows::IngestionRows;
use crate::model::Model;
use crate::time::MICROS_PER_DAY;
use crate::usage_sums::UsageRows;

/// The logical type a column must have, and how it is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Plain or dictionary strings (integers are cast losslessly to strings).
    Str,
    /// Any Parquet time unit, with or without a time zone; a date means its midnight.
    Timestamp,
    /// A calendar date.
    Date,
    /// Any integer or float.
    Number,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Timestamp => "a timestamp",
            Kind::Date => "a date",
            Kind::Number => "a number",
        }
    }

    fn output_dtype(self) -> DataType {
        match self {
            Kind::Str => DataType::String,
            Kind::Timestamp => DataType::Int64,
            Kind::Date => DataType::Int32,
            Kind::Number => DataType::Float64,
        }
    }
}

struct Column {
    name: &'static str,
    kind: Kind,
    required: bool,
}

const fn req(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: false,
    }
}

struct TableSpec {
    name: &'static str,
    required: bool,
    columns: &'static [Column],
}

const EVENTS: TableSpec = TableSpec {
    name: "events",
    required: true,
    columns: &[
        req("timestamp", Kind::Timestamp),
        req("event", Kind::Str),
        req("distinct_id", Kind::Str),
        req("org_id", Kind::Str),
        opt("current_url", Kind::Str),
    ],
};

/// The events as PostHog's batch export writes them (SPEC 2 extended by issue 21):
/// the organization and the URL are inside `properties`, and `uuid` identifies an
/// event across files. Other columns (`person_id`, `created_at`, `_inserted_at`,
/// `elements_chain`, `person_properties`, ...) are not read.
const EVENTS_EXPORT: TableSpec = TableSpec {
    name: "events",
    required: true,
    columns: &[
        req("timestamp", Kind::Timestamp),
        req("event", Kind::Str),
        req("distinct_id", Kind::Str),
        // Required to be there (it tells the shape); a null is a row skipped, not
        // bad input.
        opt("properties", Kind::Str),
        opt("uuid", Kind::Str),
    ],
};

/// The two shapes of an events file, told apart by its columns: with `org_id`, the
/// flat shape (SPEC 2); without it and with `properties`, PostHog's export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsShape {
    Flat,
    Posthog,
}

impl EventsShape {
    fn spec(self) -> &'static TableSpec {
        match self {
            EventsShape::Flat => &EVENTS,
            EventsShape::Posthog => &EVENTS_EXPORT,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventsShape::Flat => "flat",
            EventsShape::Posthog => "posthog",
        }
    }
}

const MEMBERS: TableSpec = TableSpec {
    name: "members",
    required: true,
    columns: &[
        req("org_id", Kind::Str),
        req("distinct_id", Kind::Str),
        opt("email", Kind::Str),
        req("role", Kind::Str),
        req("joined_at", Kind::Timestamp),
        opt("removed_at", Kind::Timestamp),
    ],
};

const USAGE: TableSpec = TableSpec {
    name: "usage",
    required: true,
    columns: &[req("org_id", Kind::Str), req("date", Kind::Date)],
};

const ACCOUNTS: TableSpec = TableSpec {
    name: "accounts",
    required: false,
    columns: &[
        req("org_id", Kind::Str),
        opt("name", Kind::Str),
        opt("csm", Kind::Str),
        opt("arr", Kind::Number),
        opt("mrr", Kind::Number),
        opt("forecasted_mrr", Kind::Number),
        opt("plan", Kind::Str),
        opt("renewal_date", Kind::Date),
        // The deployment checks: add-ons paid for (comma-separated), and actions
        // defined on autocapture events.
        opt("addons", Kind::Str),
        opt("autocapture_actions", Kind::Number),
        // The backtest's churn labels (or the `churns` table).
        opt("churned_at", Kind::Date),
    ],
};

const ROLE_CHANGES: TableSpec = TableSpec {
    name: "role_changes",
    required: false,
    columns: &[
        req("org_id", Kind::Str),
        req("distinct_id", Kind::Str),
        req("changed_at", Kind::Timestamp),
        opt("old_role", Kind::Str),
        opt("new_role", Kind::Str),
    ],
};

const TICKETS: TableSpec = TableSpec {
    name: "tickets",
    required: false,
    columns: &[
        req("org_id", Kind::Str),
        req("ticket_id", Kind::Str),
        req("created_at", Kind::Timestamp),
        req("priority", Kind::Str),
        opt("solved_at", Kind::Timestamp),
    ],
};

const MEETINGS: TableSpec = TableSpec {
    name: "meetings",
    required: false,
    columns: &[req("org_id", Kind::Str), req("started_at", Kind::Timestamp)],
};

const PAYMENTS: TableSpec = TableSpec {
    name: "payments",
    required: false,
    columns: &[
        req("org_id", Kind::Str),
        req("occurred_at", Kind::Timestamp),
        req("status", Kind::Str),
    ],
};

/// The organization's own ingested events per day, event and SDK (the deployment
/// checks; PostHog's "Key event volume" and "Library version audit" views).
const INGESTION: TableSpec = TableSpec {
    name: "ingestion",
    required: false,
    columns: &[
        req("org_id", Kind::Str),
        req("date", Kind::Date),
        req("event", Kind::Str),
        opt("lib", Kind::Str),
        opt("lib_version", Kind::Str),
        req("count", Kind::Number),
    ],
};

/// When an org churned (the backtest's labels, beside `accounts.churned_at`).
const CHURNS: TableSpec = TableSpec {
    name: "churns",
    required: false,
    columns: &[req("org_id", Kind::Str), req("churned_at", Kind::Date)],
};

/// When each SDK version was released (the deployment checks).
const SDK_RELEASES: TableSpec = TableSpec {
    name: "sdk_releases",
    required: false,
    columns: &[
        req("lib", Kind::Str),
        req("version", Kind::Str),
        req("released_at", Kind::Date),
    ],
};

/// Where a table came from and how big it was, for the manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableInfo {
    pub name: String,
    pub present: bool,
    pub files: usize,
    pub rows: usize,
}

/// All input tables, normalised. Optional tables are `None` when absent.
pub struct Inputs {
    /// The events, checked file by file but not read yet: the event export is the one
    /// table too big to hold, so the `events` stage reads it once, streaming.
    pub events: EventsScan,
    pub members: DataFrame,
    /// `org_id`, `date` (i32 days) and one f64 column per counter: those present in
    /// a file, plus those the model names (zeros when absent: SPEC 2).
    pub usage: DataFrame,
    /// `usage`'s orgs and day runs, for the windowed sums of each as_of.
    pub usage_rows: UsageRows,
    /// Counter columns found in at least one usage file, in file order.
    pub usage_counters_present: Vec<String>,
    pub accounts: Option<DataFrame>,
    pub role_changes: Option<DataFrame>,
    pub tickets: Option<DataFrame>,
    pub meetings: Option<DataFrame>,
    pub payments: Option<DataFrame>,
    pub ingestion: Option<DataFrame>,
    /// `ingestion` coded for the deployment figures of each as_of.
    pub ingestion_rows: Option<IngestionRows>,
    pub sdk_releases: Option<DataFrame>,
    pub churns: Option<DataFrame>,
    pub tables: Vec<TableInfo>,
}

impl Inputs {
    /// Records the event count, known only once the streaming pass has run.
    pub fn set_event_rows(&mut self, rows: u64) {
        if let Some(t) = self.tables.iter_mut().find(|t| t.name == "events") {
            t.rows = rows as usize;
        }
    }

    pub fn table_present(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t.name == name && t.present)
    }
}

/// The events table as a lazy scan of every file, normalised like the other tables.
pub struct EventsScan {
    /// The group type of the organization in export-shaped files' `$groups`.
    pub group_type: String,
    /// Every file alone, in file order (the events pass reads them one by one).
    pub files: Vec<EventsFile>,
}

/// One file of the event export, its schema checked.
pub struct EventsFile {
    pub path: PathBuf,
    pub shape: EventsShape,
    /// The source's names of expected columns (`[input.columns.events]`).
    pub renames: Renames,
    /// The file's columns as polars reads them (before normalising).
    pub schema: SchemaRef,
    /// `key=value` folder names between the table folder and the file.
    pub hive: Vec<(String, String)>,
    /// The file's event columns, normalised (see `normalise`).
    pub frame: LazyFrame,
    /// Its size, for the pass's progress.
    pub bytes: u64,
}

impl EventsScan {
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// Every file in the flat shape, as one frame (for `query`): an export-shaped
    /// file's organization and URL read from its properties (null where unreadable).
    /// Rows as the files hold them, repeated uuids included.
    pub fn flat_frame(&self) -> LazyFrame {
        let frames: Vec<LazyFrame> = self
            .files
            .iter()
            .map(|f| match f.shape {
                EventsShape::Flat => f.frame.clone(),
                EventsShape::Posthog => {
                    let property = |url: bool| {
                        let group_type = self.group_type.clone();
                        col("properties").map(
                            move |c: polars::prelude::Column| {
                                let values: StringChunked = c
                                    .str()?
                                    .iter()
                                    .map(|json| {
                                        let found =
                                            crate::properties::extract(json?, &group_type).ok()?;
                                        if url { found.url } else { found.org }
                                            .map(|v| v.into_owned())
                                    })
                                    .collect();
                                Ok(values.into_column())
                            },
                            |_, field| Ok(Field::new(field.name().clone(), DataType::String)),
                        )
                    };
                    f.frame.clone().select([
                        col("timestamp"),
                        col("event"),
                        col("distinct_id"),
                        property(false).alias("org_id"),
                        property(true).alias("current_url"),
                    ])
                }
            })
            .collect();
        concat(frames, UnionArgs::default()).unwrap_or_else(|_| DataFrame::empty().lazy())
    }

    /// Names the file behind a problem the events pass found (a null in a required
    /// column, an unreadable page) by reading the files one by one; runs only then.
    /// When every file reads cleanly, the failure was the tool's own: an internal
    /// error (exit 1), not bad input.
    /// `e` is the failure, or `None` for a null the pass met in a required column.
    pub fn blame(&self, e: Option<PolarsError>) -> anyhow::Error {
        for f in &self.files {
            let shape = f.shape;
            let f = TableFile {
                path: f.path.clone(),
                hive: f.hive.clone(),
                renames: f.renames.clone(),
            };
            if let Err(err) = load_file(&f, shape.spec(), &[]) {
                return err.into();
            }
        }
        match e {
            Some(e) => {
                anyhow::Error::from(e).context("the events pass failed on files that read cleanly")
            }
            None => anyhow::anyhow!(
                "the events pass met a null that no events file holds when read alone"
            ),
        }
    }

    /// The first file holding an event instant outside what a date can hold (chrono's
    /// years -262143 to 262142): bad input, as the SPEC's days and dates cannot be
    /// formed from it. Runs only when the pass saw such an instant.
    pub fn instant_out_of_range(&self) -> Option<InputError> {
        for f in &self.files {
            let range = f
                .frame
                .clone()
                .select([
                    col("timestamp").min().alias("min"),
                    col("timestamp").max().alias("max"),
                ])
                .collect();
            // A file that cannot be read here is not the one that held the instant.
            let Ok(range) = range else { continue };
            for bound in ["min", "max"] {
                let us = range.column(bound).ok().and_then(|c| c.i64().ok()?.get(0));
                if let Some(us) = us.filter(|&us| !crate::time::instant_in_range(us)) {
                    return Some(InputError::BadValue {
                        file: f.path.display().to_string(),
                        column: "timestamp".into(),
                        problem: format!(
                            "{us} microseconds since 1970 is outside the supported range of dates (years -262143 to 262142)"
                        ),
                    });
                }
            }
        }
        None
    }
}

/// Reads and normalises every table in `dir` (`query` reads them this way; the
/// nightly job reads the events and members first, to start the events pass, and
/// the rest beside it).
pub fn load(dir: &Path, model: &Model) -> Result<Inputs, InputError> {
    let (events, others) = rayon::join(
        || load_event_tables(dir, model),
        || load_other_tables(dir, model),
    );
    Ok(Inputs::assemble(events?, others?))
}

/// The tables the events pass reads: the events (checked, not read) and the members.
pub struct EventTables {
    pub events: EventsScan,
    pub members: DataFrame,
    members_files: usize,
}

/// Every other table.
pub struct OtherTables {
    usage: UsageTable,
    /// accounts, role_changes, tickets, meetings, payments, with their file counts.
    optional: Vec<Option<(DataFrame, usize)>>,
    usage_rows: UsageRows,
    ingestion_rows: Option<IngestionRows>,
}

/// The optional tables, in the order they are reported.
const OPTIONAL: [&TableSpec; 8] = [
    &ACCOUNTS,
    &ROLE_CHANGES,
    &TICKETS,
    &MEETINGS,
    &PAYMENTS,
    &INGESTION,
    &SDK_RELEASES,
    &CHURNS,
];

fn check_input_folder(dir: &Path) -> Result<(), InputError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(InputError::BadPath {
            path: dir.display().to_string(),
            problem: "input folder not found".into(),
        })
    }
}

/// The events table alone (checked, not read): what `rollup` reads.
pub fn load_events(dir: &Path, model: &Model) -> Result<EventsScan, InputError> {
    check_input_folder(dir)?;
    scan_events(dir, model)
}

/// The events and members tables; a problem with the events is reported before one
/// with the members.
pub fn load_event_tables(dir: &Path, model: &Model) -> Result<EventTables, InputError> {
    check_input_folder(dir)?;
    let (events, members) = rayon::join(
        || scan_events(dir, model),
        || load_table(dir, &MEMBERS, model),
    );
    let events = events?;
    let (members, members_files) = members?.expect("required table");
    Ok(EventTables {
        events,
        members,
        members_files,
    })
}

/// The usage and optional tables, read side by side; problems reported in table
/// order (usage, accounts, role_changes, tickets, meetings, payments, ingestion,
/// sdk_releases, churns).
pub fn load_other_tables(dir: &Path, model: &Model) -> Result<OtherTables, InputError> {
    check_input_folder(dir)?;
    let (usage, optional) = rayon::join(
        || load_usage(dir, model),
        || {
            OPTIONAL
                .par_iter()
                .map(|spec| load_table(dir, spec, model))
                .collect::<Vec<_>>()
        },
    );
    let usage = usage?;
    let optional = optional.into_iter().collect::<Result<Vec<_>, _>>()?;
    let ingestion = OPTIONAL.iter().position(|spec| spec.name == INGESTION.name);
    let ingestion_rows = match ingestion.and_then(|i| optional[i].as_ref()) {
        Some((frame, _)) => Some(IngestionRows::new(frame).map_err(|e| InputError::BadValue {
            file: INGESTION.name.into(),
            column: "org_id, date, event, lib, lib_version, count".into(),
            problem: format!("cannot be coded once checked (a bug: please report): {e}"),
        })?),
        None => None,
    };
    let usage_rows = UsageRows::new(&usage.frame).map_err(|e| InputError::BadValue {
        file: USAGE.name.into(),
        column: "org_id, date".into(),
        problem: format!("cannot be coded once checked (a bug: please report): {e}"),
    })?;
    Ok(OtherTables {
        usage,
        usage_rows,
        optional,
        ingestion_rows,
    })
}

impl Inputs {
    /// All the tables, with their manifest entries in table order.
    pub fn assemble(events: EventTables, others: OtherTables) -> Inputs {
        let info = |name: &str, present: bool, files: usize, rows: usize| TableInfo {
            name: name.into(),
            present,
            files,
            rows,
        };
        let mut tables = vec![
            // Rows counted by the events pass (`set_event_rows`).
            info("events", true, events.events.files(), 0),
            info(
                "members",
                true,
                events.members_files,
                events.members.height(),
            ),
            info(
                "usage",
                true,
                others.usage.files,
                others.usage.frame.height(),
            ),
        ];
        for (spec, found) in OPTIONAL.iter().zip(&others.optional) {
            tables.push(match found {
                Some((df, files)) => info(spec.name, true, *files, df.height()),
                None => info(spec.name, false, 0, 0),
            });
        }
        let [accounts, role_changes, tickets, meetings, payments, ingestion, sdk_releases, churns]: [Option<DataFrame>; 8] = others
            .optional
            .into_iter()
            .map(|found| found.map(|(df, _)| df))
            .collect::<Vec<_>>()
            .try_into()
            .unwrap_or_else(|_| unreachable!("one frame per optional table"));
        Inputs {
            events: events.events,
            members: events.members,
            usage: others.usage.frame,
            usage_rows: others.usage_rows,
            usage_counters_present: others.usage.counters_present,
            accounts,
            role_changes,
            tickets,
            meetings,
            payments,
            ingestion,
            ingestion_rows: others.ingestion_rows,
            sdk_releases,
            churns,
            tables,
        }
    }
}

struct UsageTable {
    frame: DataFrame,
    files: usize,
    counters_present: Vec<String>,
}

/// Checks every events file's schema, tells its shape, and builds its normalised scan.
fn scan_events(dir: &Path, model: &Model) -> Result<EventsScan, InputError> {
    let renames = renames_of(model, EVENTS.name);
    let files =
        find_table_files(dir, EVENTS.name, &renames)?.ok_or_else(|| InputError::MissingTable {
            dir: dir.display().to_string(),
            table: EVENTS.name.into(),
        })?;
    let mut checked = Vec::with_capacity(files.len());
    for f in files {
        let schema = file_schema(&f.path)?;
        let has = |c: &str| {
            let source = f.source(c);
            schema.contains(source) || f.hive.iter().any(|(k, _)| k == source)
        };
        let shape = if !has("org_id") && has("properties") {
            EventsShape::Posthog
        } else {
            EventsShape::Flat
        };
        // Null uuids are allowed (never duplicates), but without the column nothing
        // could be deduplicated: re-exported events would count twice.
        if shape == EventsShape::Posthog && !has("uuid") {
            return Err(InputError::MissingColumn {
                file: f.path.display().to_string(),
                column: f.source("uuid").into(),
                expected: "a string (an export file's event uuids)".into(),
            });
        }
        let frame = scan_file(&f.path)?.select(normalised_columns(&f, &schema, shape.spec(), &[])?);
        let bytes = std::fs::metadata(&f.path).map_or(0, |m| m.len());
        checked.push(EventsFile {
            bytes,
            path: f.path,
            shape,
            renames: f.renames,
            schema,
            hive: f.hive,
            frame,
        });
    }
    Ok(EventsScan {
        group_type: model.input.posthog_group_type.clone(),
        files: checked,
    })
}

/// The usage table: its fixed columns plus every counter column, each counter
/// summed as f64 (a file without a counter contributes zeros for it).
fn load_usage(dir: &Path, model: &Model) -> Result<UsageTable, InputError> {
    let renames = renames_of(model, USAGE.name);
    let files =
        find_table_files(dir, USAGE.name, &renames)?.ok_or_else(|| InputError::MissingTable {
            dir: dir.display().to_string(),
            table: USAGE.name.into(),
        })?;
    let model_counters = model.counters();
    // Counters are the numeric columns named like PostHog's usage report, or named by
    // the model; a renamed column counts under the name the job expects.
    let mut present: Vec<String> = Vec::new();
    for f in &files {
        let schema = file_schema(&f.path)?;
        for (source, dtype) in schema.iter() {
            let source = source.as_str();
            let name = renames
                .iter()
                .find(|(_, s)| s == source)
                .map_or(source, |(expected, _)| expected.as_str());
            if is_counter_name(name, &model_counters) {
                if !(dtype.is_primitive_numeric()) {
                    return Err(InputError::WrongType {
                        file: f.path.display().to_string(),
                        column: source.to_string(),
                        found: dtype.to_string(),
                        expected: "a number (usage counter)".into(),
                    });
                }
                if !present.iter().any(|p| p == name) {
                    present.push(name.to_string());
                }
            }
        }
    }
    let mut all = present.clone();
    for c in model_counters {
        if !all.contains(&c) {
            all.push(c);
        }
    }
    let mut frame = load_files(&files, &USAGE, &all)?;
    // One chunk a column: the usage sums read the counters and dates as slices, for
    // each as_of (`usage_sums`).
    frame.rechunk_mut_par();
    Ok(UsageTable {
        frame,
        files: files.len(),
        counters_present: present,
    })
}

struct TableFile {
    path: PathBuf,
    /// `key=value` folder names between the table folder and the file.
    hive: Vec<(String, String)>,
    renames: Renames,
}

/// Per expected column of a table, the name its source gives it
/// (`[input.columns.<table>]`); columns not named keep their own name.
pub type Renames = std::sync::Arc<Vec<(String, String)>>;

fn renames_of(model: &Model, table: &str) -> Renames {
    std::sync::Arc::new(
        model
            .input
            .columns
            .get(table)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    )
}

/// The source's name of an expected column.
fn source_name<'a>(renames: &'a Renames, column: &'a str) -> &'a str {
    renames
        .iter()
        .find(|(expected, _)| expected == column)
        .map_or(column, |(_, source)| source.as_str())
}

impl TableFile {
    fn source<'a>(&'a self, column: &'a str) -> &'a str {
        source_name(&self.renames, column)
    }
}

/// Checks `[input.columns.<table>]`: every table is an input table and every column
/// one the job reads from it (for `usage`, also any counter), so a typo is bad input
/// naming the key, not a column silently left unread.
pub fn check_column_names(model: &Model, source: &str) -> Result<(), InputError> {
    let specs = [
        &EVENTS,
        &MEMBERS,
        &USAGE,
        &ACCOUNTS,
        &ROLE_CHANGES,
        &TICKETS,
        &MEETINGS,
        &PAYMENTS,
    ];
    for (table, columns) in &model.input.columns {
        let bad = |key: String, problem: String| InputError::Config {
            file: source.to_string(),
            key,
            problem,
        };
        let Some(spec) = specs.iter().find(|s| s.name == table) else {
            return Err(bad(
                format!("input.columns.{table}"),
                format!(
                    "unknown input table {table:?}; known: {}",
                    specs.map(|s| s.name).join(", ")
                ),
            ));
        };
        for column in columns.keys() {
            let known = spec.columns.iter().any(|c| c.name == column)
                || (spec.name == EVENTS.name
                    && EVENTS_EXPORT.columns.iter().any(|c| c.name == column))
                || (spec.name == USAGE.name && is_counter_name(column, &model.counters()));
            if !known {
                return Err(bad(
                    format!("input.columns.{table}.{column}"),
                    format!("the job reads no column {column:?} from {table}"),
                ));
            }
        }
    }
    Ok(())
}

/// A usage column is a counter when it is named like PostHog's usage report
/// (`*_in_period`) or named by the model.
fn is_counter_name(name: &str, model_counters: &[String]) -> bool {
    name != "org_id"
        && name != "date"
        && (name.ends_with("_in_period") || model_counters.iter().any(|c| c == name))
}

/// The files of a table: `NAME.parquet`, or every Parquet file under `NAME/`
/// (hive-partitioned folders allowed), in a stable order. `None` when absent. Every
/// export manifest found there must have its files (`check_export_manifests`).
fn find_table_files(
    dir: &Path,
    table: &str,
    renames: &Renames,
) -> Result<Option<Vec<TableFile>>, InputError> {
    let single = dir.join(format!("{table}.parquet"));
    if single.is_file() {
        return Ok(Some(vec![TableFile {
            path: single,
            hive: vec![],
            renames: renames.clone(),
        }]));
    }
    let folder = dir.join(table);
    if !folder.is_dir() {
        return Ok(None);
    }
    let mut files = Vec::new();
    let mut manifests = Vec::new();
    let listing = Listing {
        renames,
        files: &mut files,
        manifests: &mut manifests,
    };
    collect_parquet_files(&folder, &mut Vec::new(), listing).map_err(|e| {
        InputError::Unreadable {
            file: folder.display().to_string(),
            reason: e.to_string(),
        }
    })?;
    check_export_manifests(&manifests, &files)?;
    if files.is_empty() {
        return Err(InputError::EmptyTableFolder {
            file: folder.display().to_string(),
            table: table.into(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Some(files))
}

/// Whether a file name is a Parquet file's: `.parquet`, or with the compression
/// suffix PostHog's batch export adds (`.parquet.zst`, `.sz`, `.br`, `.gz`, `.lz4`)
/// although the compression is inside the Parquet file.
fn is_parquet_name(name: &str) -> bool {
    let name = [".zst", ".sz", ".br", ".gz", ".lz4"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    name.ends_with(".parquet")
}

/// A PostHog batch export's manifest of a split interval
/// (`{start}-{end}_manifest.json`), written after its data files.
fn is_export_manifest(name: &str) -> bool {
    name.ends_with("_manifest.json")
}

/// Where `collect_parquet_files` puts what it finds.
struct Listing<'a> {
    renames: &'a Renames,
    files: &'a mut Vec<TableFile>,
    manifests: &'a mut Vec<PathBuf>,
}

/// Each manifest lists its interval's files by S3 key (`{"files": ["<prefix>/<name>",
/// ...]}`); a local copy may lack the prefix, so a file is matched by its name in the
/// manifest's folder. A listed file that is missing means the export is incomplete.
fn check_export_manifests(manifests: &[PathBuf], files: &[TableFile]) -> Result<(), InputError> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        files: Vec<String>,
    }
    for manifest in manifests {
        let bad = |problem: String| InputError::BadValue {
            file: manifest.display().to_string(),
            column: "files".into(),
            problem,
        };
        let text = std::fs::read_to_string(manifest).map_err(|e| unreadable(manifest, e))?;
        let listed: Manifest = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "expected an export manifest {{\"files\": [...]}}: {e}"
            ))
        })?;
        let folder = manifest.parent().unwrap_or(Path::new(""));
        for key in &listed.files {
            let name = key.rsplit('/').next().unwrap_or(key);
            let present = files.iter().any(|f| {
                f.path.parent() == Some(folder) && f.path.file_name().is_some_and(|n| n == name)
            });
            if !present {
                return Err(bad(format!(
                    "lists {name}, which is not in {}: the export is incomplete",
                    folder.display()
                )));
            }
        }
    }
    Ok(())
}

fn collect_parquet_files(
    folder: &Path,
    hive: &mut Vec<(String, String)>,
    out: Listing,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(folder)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        // Hidden files and markers (`_SUCCESS`, `.crc`) are not data.
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if path.is_dir() {
            let pushed = match name.split_once('=') {
                Some((k, v)) => {
                    hive.push((k.to_string(), v.to_string()));
                    true
                }
                None => false,
            };
            let inner = Listing {
                renames: out.renames,
                files: &mut *out.files,
                manifests: &mut *out.manifests,
            };
            collect_parquet_files(&path, hive, inner)?;
            if pushed {
                hive.pop();
            }
        } else if is_parquet_name(&name) {
            out.files.push(TableFile {
                path,
                hive: hive.clone(),
                renames: out.renames.clone(),
            });
        } else if is_export_manifest(&name) {
            out.manifests.push(path);
        }
    }
    Ok(())
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> InputError {
    InputError::Unreadable {
        file: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn scan_file(path: &Path) -> Result<LazyFrame, InputError> {
    let p = path.to_string_lossy().to_string();
    let args = ScanArgsParquet {
        glob: false,
        ..Default::default()
    };
    LazyFrame::scan_parquet(PlRefPath::new(p), args).map_err(|e| unreadable(path, e))
}

fn file_schema(path: &Path) -> Result<SchemaRef, InputError> {
    scan_file(path)?
        .collect_schema()
        .map_err(|e| unreadable(path, e))
}

/// Loads one table, or `None` when an optional table is absent.
fn load_table(
    dir: &Path,
    spec: &TableSpec,
    model: &Model,
) -> Result<Option<(DataFrame, usize)>, InputError> {
    let Some(files) = find_table_files(dir, spec.name, &renames_of(model, spec.name))? else {
        if spec.required {
            return Err(InputError::MissingTable {
                dir: dir.display().to_string(),
                table: spec.name.into(),
            });
        }
        return Ok(None);
    };
    let df = load_files(&files, spec, &[])?;
    Ok(Some((df, files.len())))
}

/// Reads every file of a table into one normalised frame. `extra_numbers` are further
/// numeric columns (usage counters), zero where a file lacks them.
fn load_files(
    files: &[TableFile],
    spec: &TableSpec,
    extra_numbers: &[String],
) -> Result<DataFrame, InputError> {
    let mut frames = Vec::with_capacity(files.len());
    for f in files {
        frames.push(load_file(f, spec, extra_numbers)?);
    }
    let mut iter = frames.into_iter();
    let mut out = iter.next().expect("at least one file");
    for df in iter {
        out.vstack_mut_owned(df)
            .map_err(|e| unreadable(&files[0].path, e))?;
    }
    // Left in the chunks polars' reader gave (a row group's each, as measured): a
    // copy of every column into one chunk was a fifth of reading the 3.7M-row
    // ingestion table at 50M events, and only the usage table is read as slices
    // (`load_usage`).
    Ok(out)
}

/// The select list that normalises one file of a table: checked types, hive values for
/// columns the file lacks, nulls for absent optional columns, zeros for absent counters.
fn normalised_columns(
    f: &TableFile,
    schema: &Schema,
    spec: &TableSpec,
    extra_numbers: &[String],
) -> Result<Vec<Expr>, InputError> {
    let file = f.path.display().to_string();
    let mut exprs = Vec::new();
    for c in spec.columns {
        let source = f.source(c.name);
        let expr = match schema.get(source) {
            Some(dtype) => {
                normalise(col(source), dtype, c.kind).ok_or_else(|| InputError::WrongType {
                    file: file.clone(),
                    column: source.into(),
                    found: dtype.to_string(),
                    expected: c.kind.expected().into(),
                })?
            }
            None => match f.hive.iter().find(|(k, _)| k == source) {
                Some((_, v)) => hive_value(&file, c, v)?,
                None if c.required => {
                    return Err(InputError::MissingColumn {
                        file,
                        column: source.into(),
                        expected: c.kind.expected().into(),
                    })
                }
                None => lit(NULL).cast(c.kind.output_dtype()),
            },
        };
        exprs.push(expr.alias(c.name));
    }
    for name in extra_numbers {
        let source = f.source(name);
        let expr = match schema.get(source) {
            Some(dtype) => normalise(col(source), dtype, Kind::Number)
                .ok_or_else(|| InputError::WrongType {
                    file: file.clone(),
                    column: source.into(),
                    found: dtype.to_string(),
                    expected: Kind::Number.expected().into(),
                })?
                // SPEC 2: a missing counter is zero usage; so is a null cell.
                .fill_null(lit(0.0)),
            None => lit(0.0),
        };
        exprs.push(expr.alias(name.as_str()));
    }
    Ok(exprs)
}

/// Reads one file of a table, normalised, and rejects nulls in required columns.
fn load_file(
    f: &TableFile,
    spec: &TableSpec,
    extra_numbers: &[String],
) -> Result<DataFrame, InputError> {
    // The footer is read once: for the select list and for the lossless-date check.
    let schema = file_schema(&f.path)?;
    let exprs = normalised_columns(f, &schema, spec, extra_numbers)?;
    let df = scan_file(&f.path)?
        .select(exprs)
        .collect()
        .map_err(|e| unreadable(&f.path, e))?;
    reject_times_of_day(f, &schema, spec)?;
    for c in spec.columns.iter().filter(|c| c.required) {
        let nulls = df.column(c.name).map(|s| s.null_count()).unwrap_or(0);
        if nulls > 0 {
            return Err(InputError::NullInRequired {
                file: f.path.display().to_string(),
                column: f.source(c.name).into(),
                count: nulls as u64,
            });
        }
    }
    Ok(df)
}

/// A date column stored as a timestamp is read as a date only when every value is a
/// UTC midnight; a time of day would be lost (SPEC 2: casts must be lossless).
fn reject_times_of_day(f: &TableFile, schema: &Schema, spec: &TableSpec) -> Result<(), InputError> {
    for c in spec.columns.iter().filter(|c| c.kind == Kind::Date) {
        let source = f.source(c.name);
        let Some(DataType::Datetime(unit, _)) = schema.get(source) else {
            continue;
        };
        let us = instant_us(col(source), *unit);
        let time_of_day = us.clone() - us.floor_div(lit(MICROS_PER_DAY)) * lit(MICROS_PER_DAY);
        let off_midnight = time_of_day.neq(lit(0i64)).sum().alias(c.name);
        let count = scan_file(&f.path)?
            .select([off_midnight])
            .collect()
            .map_err(|e| unreadable(&f.path, e))?
            .column(c.name)
            .ok()
            .and_then(|s| s.cast(&DataType::UInt64).ok()?.u64().ok()?.get(0))
            .unwrap_or(0);
        if count > 0 {
            return Err(InputError::BadValue {
                file: f.path.display().to_string(),
                column: source.into(),
                problem: format!(
                    "expected a date; {count} timestamp value(s) have a time of day, which a date would lose"
                ),
            });
        }
    }
    Ok(())
}

/// A column of a hive partition folder name (`date=2026-11-01`), as a literal.
fn hive_value(file: &str, c: &Column, v: &str) -> Result<Expr, InputError> {
    let bad = |expected: &str| InputError::BadValue {
        file: file.to_string(),
        column: c.name.into(),
        problem: format!("partition value {v:?} is not {expected}"),
    };
    Ok(match c.kind {
        Kind::Str => lit(v.to_string()),
        Kind::Date => {
            let d = crate::time::AsOf::parse(v).map_err(|_| bad("a date (YYYY-MM-DD)"))?;
            lit(d.day)
        }
        Kind::Timestamp => {
            let d = crate::time::AsOf::parse(v).map_err(|_| bad("a date (YYYY-MM-DD)"))?;
            lit(d.us())
        }
        Kind::Number => lit(v.parse::<f64>().map_err(|_| bad("a number"))?),
    })
}

/// Microseconds since the epoch (UTC) of a datetime column: its physical value is UTC
/// whatever its zone label. The expression form of `time::micros`, the same rule:
/// nanoseconds floored, milliseconds saturating where microseconds cannot hold them.
fn instant_us(e: Expr, unit: TimeUnit) -> Expr {
    let raw = e.to_physical();
    match unit {
        TimeUnit::Nanoseconds => raw.floor_div(lit(1000i64)),
        TimeUnit::Microseconds => raw,
        TimeUnit::Milliseconds => {
            let limit = i64::MAX / 1000;
            when(raw.clone().gt(lit(limit)))
                .then(lit(i64::MAX))
                .when(raw.clone().lt(lit(-limit)))
                .then(lit(i64::MIN))
                .otherwise(raw * lit(1000i64))
        }
    }
}

/// The expression that turns a stored column into its normalised form, or `None`
/// when the stored type cannot be cast losslessly to what the column must hold.
fn normalise(e: Expr, dtype: &DataType, kind: Kind) -> Option<Expr> {
    use DataType as D;
    match kind {
        Kind::Str => match dtype {
            D::String => Some(e),
            D::Categorical(..) | D::Enum(..) => Some(e.cast(D::String)),
            d if d.is_integer() => Some(e.cast(D::String)),
            D::Null => Some(e.cast(D::String)),
            _ => None,
        },
        Kind::Timestamp => match dtype {
            D::Datetime(unit, _) => Some(instant_us(e, *unit)),
            D::Date => Some(e.to_physical().cast(D::Int64) * lit(MICROS_PER_DAY)),
            D::Null => Some(e.cast(D::Int64)),
            _ => None,
        },
        Kind::Date => match dtype {
            D::Date => Some(e.to_physical()),
            // Lossless only at midnight UTC; `load_file` checks that it is.
            D::Datetime(unit, _) => Some(
                instant_us(e, *unit)
                    .floor_div(lit(MICROS_PER_DAY))
                    .cast(D::Int32),
            ),
            D::Null => Some(e.cast(D::Int32)),
            _ => None,
        },
        Kind::Number => match dtype {
            d if d.is_primitive_numeric() => Some(e.cast(D::Float64)),
            D::Null => Some(e.cast(D::Float64)),
            _ => None,
        },
    }
}

/// The input tables as analysts see them in `query`: instants as UTC datetimes and
/// dates as dates again (inside the job they are plain integers).
pub fn for_sql(inputs: &Inputs) -> Vec<(&'static str, LazyFrame)> {
    let typed = |spec: &TableSpec, df: &DataFrame| typed_for_sql(spec, df.clone().lazy());
    let mut tables = vec![
        ("events", typed_for_sql(&EVENTS, inputs.events.flat_frame())),
        ("members", typed(&MEMBERS, &inputs.members)),
        ("usage", typed(&USAGE, &inputs.usage)),
    ];
    let optional = [
        (&ACCOUNTS, &inputs.accounts),
        (&ROLE_CHANGES, &inputs.role_changes),
        (&TICKETS, &inputs.tickets),
        (&MEETINGS, &inputs.meetings),
        (&PAYMENTS, &inputs.payments),
        (&INGESTION, &inputs.ingestion),
        (&SDK_RELEASES, &inputs.sdk_releases),
        (&CHURNS, &inputs.churns),
    ];
    for (spec, df) in optional {
        if let Some(df) = df {
            tables.push((spec.name, typed(spec, df)));
        }
    }
    tables
}

fn typed_for_sql(spec: &TableSpec, lf: LazyFrame) -> LazyFrame {
    let exprs: Vec<Expr> = spec
        .columns
        .iter()
        .filter_map(|c| match c.kind {
            Kind::Timestamp => {
                Some(col(c.name).cast(DataType::Datetime(TimeUnit::Microseconds, None)))
            }
            Kind::Date => Some(col(c.name).cast(DataType::Date)),
            _ => None,
        })
        .collect();
    lf.with_columns(exprs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_events(dir: &Path, person: Option<&str>) {
        let mut df = df!(
            "timestamp" => [1_700_000_000_000_000i64],
            "event" => ["x"],
            "distinct_id" => [person],
            "org_id" => ["a"],
        )
        .unwrap();
        df.with_column(
            df.column("timestamp")
                .unwrap()
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .unwrap(),
        )
        .unwrap();
        let file = std::fs::File::create(dir.join("events.parquet")).unwrap();
        ParquetWriter::new(file).finish(&mut df).unwrap();
    }

    #[test]
    fn a_pass_failure_on_files_that_read_cleanly_is_internal_not_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        write_events(dir.path(), Some("p"));
        let scan = scan_events(dir.path(), &Model::default_model()).unwrap();
        let e = scan.blame(Some(polars_err!(ComputeError: "decoder bug")));
        assert_eq!(crate::exit_code(&e), 1, "{e:#}");
        assert!(format!("{e:#}").contains("decoder bug"), "{e:#}");
        assert_eq!(crate::exit_code(&scan.blame(None)), 1);
        // A null the file does hold is bad input naming it.
        write_events(dir.path(), None);
        let scan = scan_events(dir.path(), &Model::default_model()).unwrap();
        let e = scan.blame(None);
        assert_eq!(crate::exit_code(&e), 2);
        assert!(
            format!("{e}").contains("events.parquet") && format!("{e}").contains("distinct_id")
        );
    }
}
