use crate::metrics::rich_fixture;
use crate::util::*;

/// Every output file's bytes; the manifest without its timings and memory peaks
/// (measurements of the run, by nature).
fn outputs(w: &Workdir) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(w.out())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let mut bytes = std::fs::read(&p).unwrap();
            if name == "manifest.json" {
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let fields = v.as_object_mut().unwrap();
                fields.remove("timings_seconds");
                fields.remove("peak_memory_mib");
                bytes = serde_json::to_vec(&v).unwrap();
            }
            (name, bytes)
        })
        .collect()
}

#[test]
fn same_inputs_give_the_same_bytes_at_any_thread_count() {
    let w = Workdir::new();
    rich_fixture(&w);
    w.run(&["--threads", "1"]);
    let one = outputs(&w);
    w.run(&["--threads", "2"]);
    let two = outputs(&w);
    w.run(&[]);
    let default = outputs(&w);
    assert_eq!(
        one.len(),
        11,
        "five tables in two formats, and the manifest"
    );
    assert!(one == two, "1 vs 2 threads differ");
    assert!(one == default, "repeated run differs");
}

#[test]
fn generated_data_gives_the_same_bytes_at_any_thread_count() {
    let w = Workdir::new();
    w.generate(30, 70, 3);
    w.run(&["--threads", "1"]);
    let one = outputs(&w);
    w.run(&["--threads", "2"]);
    assert!(
        one == outputs(&w),
        "1 vs 2 threads differ on generated data"
    );
}

#[test]
fn events_read_in_tiny_chunks_give_the_same_bytes() {
    let w = Workdir::new();
    w.generate(30, 70, 4);
    w.run(&[]);
    let whole = outputs(&w);
    // Chunks of 1000 rows, cutting days and files anywhere: the rollup carries its
    // (member, day) rows across chunks, and nothing may change.
    let (i, o) = (w.input(), w.out());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_account-health"))
        .args([
            "run",
            "--quiet",
            "--as-of",
            AS_OF,
            "--input",
            i.to_str().unwrap(),
            "--out",
            o.to_str().unwrap(),
        ])
        .env("ACCOUNT_HEALTH_EVENTS_CHUNK_ROWS", "1000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(whole == outputs(&w), "chunked reading changed the outputs");
}
