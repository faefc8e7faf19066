//! What the benchmarks share.

use std::path::{Path, PathBuf};

/// Where generated benchmark inputs are kept between runs: `bench-data` beside the
/// build, under `CARGO_TARGET_DIR` when it is set (CI points it at a cache outside
/// the clone), else under the crate's `target` folder.
pub fn bench_data() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench-data")
}
