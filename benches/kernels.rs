//! Micro-benchmarks of the job's two hot kernels (issue 5), on generated inputs of a
//! few sizes: the streaming events rollup (`events::rollup`) and everything computed
//! from it (`metrics::compute` + `score::compute`, collected). `cargo bench --bench
//! kernels`; divan prints time per call and, with `counter`, events per second.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

mod common;

use account_health::events::{self, Rollup};
use account_health::input::{self, Inputs};
use account_health::member_aggregates::MemberEvents;
use account_health::model::Model;
use account_health::progress::PassProgress;
use account_health::rollup_spec::RollupSpec;
use account_health::time::AsOf;
use account_health::{metrics, score};
use divan::counter::ItemsCount;
use divan::Bencher;

const AS_OF: &str = "2026-11-23";

fn main() {
    divan::main();
}

/// Generated inputs with `orgs` orgs over 60 days (~28 events per org and day),
/// written once per size under `common::bench_data()`.
fn inputs(orgs: usize) -> (Inputs, Model) {
    static DIRS: OnceLock<PathBuf> = OnceLock::new();
    let root = DIRS.get_or_init(common::bench_data);
    let dir = root.join(format!("kernels-{orgs}"));
    if !dir.join("usage.parquet").exists() {
        let status = Command::new(env!("CARGO_BIN_EXE_account-health"))
            .args([
                "generate",
                "--quiet",
                "--orgs",
                &orgs.to_string(),
                "--days",
                "60",
                "--as-of",
                AS_OF,
                "--out",
            ])
            .arg(&dir)
            .status()
            .expect("runs generate");
        assert!(status.success());
    }
    let model = Model::default_model();
    let inputs = input::load(&dir, &model).expect("generated inputs load");
    (inputs, model)
}

#[divan::bench(args = [50, 200, 800], sample_count = 5)]
fn events_rollup(bencher: Bencher, orgs: usize) {
    let (inputs, model) = inputs(orgs);
    let spec = RollupSpec::of(&model);
    let rows = events::rollup(
        &inputs.events,
        &inputs.members,
        &spec,
        &PassProgress::hidden(),
        None,
    )
    .expect("rollup")
    .rows;
    bencher.counter(ItemsCount::new(rows as usize)).bench(|| {
        events::rollup(
            &inputs.events,
            &inputs.members,
            &spec,
            &PassProgress::hidden(),
            None,
        )
        .expect("rollup")
    });
}

#[divan::bench(args = [50, 200, 800], sample_count = 5)]
fn metrics_and_scores(bencher: Bencher, orgs: usize) {
    let (inputs, model) = inputs(orgs);
    let as_of = AsOf::parse(AS_OF).expect("date");
    let spec = RollupSpec::of(&model);
    let rollup: Rollup = events::rollup(
        &inputs.events,
        &inputs.members,
        &spec,
        &PassProgress::hidden(),
        None,
    )
    .expect("rollup");
    let member_events = MemberEvents::new(&rollup, &as_of).expect("member events");
    bencher
        .counter(ItemsCount::new(rollup.rows as usize))
        .bench(|| {
            let m = metrics::compute(&member_events, &inputs, &model, &as_of).expect("metrics");
            score::compute(m, &inputs, &model)
                .frame
                .collect()
                .expect("scores")
        });
}

/// Properties texts shaped like an export's (the generator's two key orders, an
/// escaped title, a unique insert id and time): the targeted JSON scan alone.
fn export_properties(rows: usize) -> Vec<String> {
    (0..rows)
        .map(|k| {
            let unique = format!(
                "\"$insert_id\":\"{:016x}\",\"$time\":1793491200.{:06}",
                (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                k % 1_000_000
            );
            let groups = format!(
                "\"$groups\":{{\"project\":\"org-{0}-web\",\"organization\":\"org-{0}\"}}",
                k % 4000
            );
            let url = format!(",\"$current_url\":\"https://app.example.com/docs/page-{}?x=1\"", k % 300);
            if k % 2 == 0 {
                format!("{{\"$lib\":\"web\",{groups}{url},\"$title\":\"Say \\\"hi\\\" \\u00e9\",{unique}}}")
            } else {
                format!("{{{unique},\"$session_id\":\"s{}\"{url},{groups},\"$lib\":\"posthog-python\"}}", k % 97)
            }
        })
        .collect()
}

#[divan::bench(sample_count = 10)]
fn properties_extract(bencher: Bencher) {
    let texts = export_properties(100_000);
    let bytes: usize = texts.iter().map(String::len).sum();
    bencher
        .counter(divan::counter::BytesCount::new(bytes))
        .bench(|| {
            texts
                .iter()
                .filter(|t| {
                    account_health::properties::extract(t, "organization")
                        .is_ok_and(|f| f.org.is_some())
                })
                .count()
        });
}
