#!/usr/bin/env bash
# Differential check: runs the job on generated inputs at several as_of dates and
# compares health, indicators, users and trends with an independent reading of the
# SPEC in DuckDB (health_indicators.py, users_trends.py). Not part of CI (it needs
# PyPI); run it after changing anything that computes a number.
#   tools/crosscheck/run.sh [ORGS] [SEED]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
orgs=${1:-300}
seed=${2:-11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
venv=${CROSSCHECK_VENV:-$HOME/.cache/account-health/crosscheck-venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet duckdb
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/account-health/target}
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin=$CARGO_TARGET_DIR/release/account-health
# The flat shape: the SQL reads org_id and current_url (the export shape gives the
# same tables, tested byte for byte in tests/generate.rs).
"$bin" generate --quiet --shape flat --out "$work/in" --orgs "$orgs" --days 120 --seed "$seed" --as-of 2026-11-23
for as_of in default 2026-11-02 2026-10-15 2026-09-06; do
    rm -rf "$work/out"
    if [ "$as_of" = default ]; then
        "$bin" run --quiet --input "$work/in" --out "$work/out"
        args=()
    else
        "$bin" run --quiet --input "$work/in" --out "$work/out" --as-of "$as_of"
        args=("$as_of")
    fi
    "$venv/bin/python" "$here/health_indicators.py" "$work/in" "$work/out" "${args[@]}"
    "$venv/bin/python" "$here/users_trends.py" "$work/in" "$work/out" "${args[@]}"
done
