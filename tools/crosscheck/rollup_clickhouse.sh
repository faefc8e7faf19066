#!/usr/bin/env bash
# The ClickHouse rollup SQL, run for real (issue 27): generates an export-shaped
# input (re-exported and late events, events without an organization), builds the
# rollup rows with `account-health rollup-sql --dialect clickhouse` in chdb (the
# embedded ClickHouse from PyPI), runs the job from those rollups and from the raw
# events, and demands every output table byte for byte equal. Also run by .ci/run.
#   tools/crosscheck/rollup_clickhouse.sh [ORGS] [SEED]
# The venv lives in the build cache (CHDB_VENV, default beside CARGO_TARGET_DIR);
# the binary is CARGO_TARGET_DIR's release build, which the caller builds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
orgs=${1:-60}
seed=${2:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/account-health/target}
bin=$CARGO_TARGET_DIR/release/account-health
venv=${CHDB_VENV:-$CARGO_TARGET_DIR/../chdb-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import chdb' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet chdb
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" generate --quiet --shape posthog --out "$work/in" --orgs "$orgs" --days 60 --seed "$seed"
"$bin" rollup-sql --dialect clickhouse \
    --events "file('$work/in/events/*.parquet*', 'Parquet', 'auto', 'none')" > "$work/rollup.sql"
mkdir "$work/rollups"
"$venv/bin/python" - "$work/rollup.sql" "$work/rollups/clickhouse.parquet" <<'PY'
import sys
import chdb
sql = open(sys.argv[1]).read()
open(sys.argv[2], "wb").write(chdb.query(sql, "Parquet").bytes())
PY
"$bin" run --quiet --input "$work/in" --out "$work/raw" --as-of 2026-11-23
"$bin" run --quiet --input "$work/in" --out "$work/ch" --as-of 2026-11-23 --rollups "$work/rollups"
status=0
for f in "$work"/raw/current/*.csv "$work"/raw/current/*.parquet; do
    name=$(basename "$f")
    if ! cmp -s "$f" "$work/ch/current/$name"; then
        echo "rollup_clickhouse: $name differs between the raw run and the run from ClickHouse's rollups" >&2
        status=1
    fi
done
grep -q '"rollup_days": 6[01]' "$work/ch/manifest.json" || {
    echo "rollup_clickhouse: the run did not take its days from the rollups" >&2
    grep -A6 '"rollups"' "$work/ch/manifest.json" >&2
    status=1
}
[ "$status" = 0 ] && echo "rollup_clickhouse: every table of the run from ClickHouse's rollups equals the raw run's"
exit "$status"
