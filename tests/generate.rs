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
