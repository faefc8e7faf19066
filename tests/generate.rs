use crate::util::*;

#[test]
fn same_seed_same_files_different_seed_different_files() {
    let w = Workdir::new();
    let gen = |dir: &str, seed: &str| {
        let p = w.path().join(dir);
        let o = w.cmd(&[
            "generate",
            "--out",
            p.to_str().unwrap(),
            "--orgs",
            "12",
            "--days",
            "40",
            "--seed",
            seed,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(p.join("members.parquet")).unwrap()
    };
    assert_eq!(gen("g1", "5"), gen("g2", "5"));
    assert_ne!(gen("g1", "5"), gen("g3", "6"));
}

#[test]
fn generated_data_plants_the_situations() {
    let w = Workdir::new();
    w.generate(40, 90, 9);
    w.run(&[]);
    let h = w.read("health");
    assert_eq!(h.height(), 40);
    // Profiles cycle: org 2 is "quiet" (no events for 9+ days), org 1 "declining".
    let quiet = w.health_f64("org_00002", "days_since_last_seen").unwrap();
    assert!(quiet > 8.0, "quiet org last seen {quiet} days ago");
    let declining = w
        .health_f64("org_00001", "event_count_decrease_30d")
        .unwrap();
    assert!(declining > 20.0, "declining org decrease {declining}");
    let labels = h.column("health_label").unwrap().str().unwrap();
    let distinct: std::collections::BTreeSet<_> = labels.iter().flatten().collect();
    assert!(distinct.len() >= 2, "a spread of labels: {distinct:?}");
}

#[test]
fn generated_data_plants_each_deployment_check() {
    // accounts.deployment_scenario names the check planted in an org ("fine": none);
    // each deployment indicator fires exactly on the orgs planted with it.
    let w = Workdir::new();
    w.generate(80, 60, 4);
    w.run(&[]);
    let accounts = read_parquet(&w.input().join("accounts.parquet"));
    let orgs = strings(&accounts, "org_id");
    let planted = strings(&accounts, "deployment_scenario");
    for check in [
        "identify_overuse",
        "groupidentify_overuse",
        "autocapture_unused",
        "sdk_outdated",
        "group_analytics_unused",
    ] {
        let want: Vec<String> = orgs
            .iter()
            .zip(&planted)
            .filter(|(_, p)| p.as_str() == check)
            .map(|(o, _)| o.clone())
            .collect();
        assert!(!want.is_empty(), "{check} planted somewhere");
        assert_eq!(fired_for(&w, check), want, "{check}");
    }
    assert_eq!(w.read("deployment").height(), 80, "every org has ingestion");
}

#[test]
fn committed_sample_data_runs_with_no_arguments() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let w = Workdir::new();
    let out = w.out();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_account-health"))
        .args(["run", "--quiet", "--out", out.to_str().unwrap()])
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(w.read("health").height() >= 100);
}

/// Every published file of a run's output folder but the manifest (timings), by
/// name (the run and history folders hold the same tables).
fn tables_of(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name() != "manifest.json" && e.file_name() != ".lock" && !e.path().is_dir()
        })
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn both_event_shapes_give_byte_identical_tables() {
    // The export shape holds the same events plus re-exported copies (same uuid),
    // late arrivals and anonymous rows with no organization: skipped and counted.
    let w = Workdir::new();
    let mut outs = Vec::new();
    for shape in ["posthog", "flat"] {
        let input = w.path().join(format!("in-{shape}"));
        let out = w.path().join(format!("out-{shape}"));
        let o = w.cmd(&[
            "generate",
            "--quiet",
            "--out",
            input.to_str().unwrap(),
            "--orgs",
            "30",
            "--days",
            "60",
            "--seed",
            "3",
            "--shape",
            shape,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = w.cmd(&[
            "run",
            "--quiet",
            "--as-of",
            AS_OF,
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outs.push(out);
    }
    let (posthog, flat) = (tables_of(&outs[0]), tables_of(&outs[1]));
    assert_eq!(posthog.len(), 16, "eight tables in two formats");
    for (name, bytes) in &flat {
        assert!(posthog[name] == *bytes, "{name} differs between the shapes");
    }
    let manifest = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
    };
    let (p, f) = (manifest(&outs[0]), manifest(&outs[1]));
    let dq = &p["data_quality"];
    assert!(dq["duplicate_event_uuids"].as_u64().unwrap() > 0, "{dq}");
    assert!(dq["events_without_org"].as_u64().unwrap() > 0, "{dq}");
    assert_eq!(dq["events_unreadable_properties"], 0);
    assert_eq!(f["data_quality"]["duplicate_event_uuids"], 0);
    // Rows read: every exported row, the skipped ones included.
    let rows = |m: &serde_json::Value| m["inputs"][0]["rows"].as_u64().unwrap();
    assert_eq!(
        rows(&p),
        rows(&f)
            + dq["duplicate_event_uuids"].as_u64().unwrap()
            + dq["events_without_org"].as_u64().unwrap()
    );
}
