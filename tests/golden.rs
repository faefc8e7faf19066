//! Golden outputs: the committed sample data's health and indicators tables, normalised
//! (rows sorted as written, floats to 6 decimals, nulls as empty), compared line by line
//! with tests/golden/*.txt. A change here needs a reviewed reason; regenerate with
//! `UPDATE_GOLDEN=1 cargo test --release golden` and read the diff before committing.

use std::path::Path;

use polars::prelude::*;

use crate::util::*;

/// One line per row: every column, floats at fixed precision.
fn normalised(df: &DataFrame) -> String {
    let mut out = df
        .get_column_names()
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    let columns: Vec<Column> = df
        .columns()
        .iter()
        .map(|c| match c.dtype() {
            DataType::Float64 | DataType::Float32 => c.clone(),
            _ => c.cast(&DataType::String).unwrap(),
        })
        .collect();
    for row in 0..df.height() {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match c.dtype() {
                DataType::String => c.str().unwrap().get(row).unwrap_or("").to_string(),
                _ => {
                    let v = c.cast(&DataType::Float64).unwrap().f64().unwrap().get(row);
                    v.map_or(String::new(), |x| format!("{x:.6}"))
                }
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn check(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert!(
            g == w,
            "{name} line {}:\nexpected: {w}\n     got: {g}",
            i + 1
        );
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "{name}: number of lines"
    );
}

#[test]
fn sample_data_health_and_indicators_match_the_golden_files() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let w = Workdir::new();
    let out = w.out();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_account-health"))
        .args([
            "run",
            "--quiet",
            "--as-of",
            "2026-11-23",
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check("health", &normalised(&w.read("health")));
    check("indicators", &normalised(&w.read("indicators")));
}
