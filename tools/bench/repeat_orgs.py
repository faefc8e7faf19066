#!/usr/bin/env python3
"""Builds a bigger export-shaped input by repeating a generated one under new org ids.

    repeat_orgs.py SRC DST COPIES

SRC is a folder written by `account-health generate --shape posthog`. DST gets COPIES
copies of every org: copy c renames each org id and distinct_id with a suffix `_c<c>`
(in every table, and inside the events' `properties` JSON), and gives each event a
uuid of its own (the last three hex digits are the copy's number), so the copies are
distinct organizations, people and events with the same behaviour. The events are
written as PostHog's batch export writes a daily interval: one file per UTC day of
`_inserted_at`, `{start}-{end}.parquet.zst`, the copies' rows merged in ingestion
order. COPIES=1 rewrites SRC in that daily layout (a fair base to compare against).

Issue 27 measures `rollup` and `run --rollups` at 15M and 105M events on such input
(README "Rollups and beyond one machine"). Tables without org_id (sdk_releases) are
copied once. Needs pyarrow: the chdb venv of
tools/crosscheck/rollup_clickhouse.sh has it.
"""
import datetime as dt
import glob
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW_GROUP = 262_144


def plain_strings(table):
    """The table with string views as plain strings (pyarrow sorts and takes those)."""
    schema = pa.schema(
        [f.with_type(pa.string()) if f.type == pa.string_view() else f for f in table.schema]
    )
    return table.cast(schema)


def renamed(table, copy, columns=("org_id", "distinct_id")):
    suffix = f"_c{copy}"
    for name in columns:
        if name in table.column_names:
            i = table.column_names.index(name)
            column = pc.binary_join_element_wise(
                table.column(name).cast(pa.string()), suffix, ""
            )
            table = table.set_column(i, name, column)
    return table


def events_copy(table, copy):
    table = renamed(table, copy, ("distinct_id", "person_id"))
    props = pc.replace_substring_regex(
        table.column("properties").cast(pa.string()),
        pattern=r'"organization":"([^"]*)"',
        replacement=rf'"organization":"\1_c{copy}"',
    )
    table = table.set_column(table.column_names.index("properties"), "properties", props)
    uuid = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(table.column("uuid").cast(pa.string()), 0, 33),
        f"{copy:03x}",
        "",
    )
    return table.set_column(table.column_names.index("uuid"), "uuid", uuid)


def day_name(day):
    start = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
    end = start + dt.timedelta(days=1)
    return f"{start.isoformat()}-{end.isoformat()}.parquet.zst"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, dst, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(os.path.join(dst, "events"), exist_ok=True)
    for path in sorted(glob.glob(os.path.join(src, "*.parquet"))):
        table = plain_strings(pq.read_table(path))
        if "org_id" in table.column_names:
            out = pa.concat_tables([renamed(table, c) for c in range(copies)])
        else:
            out = table
        pq.write_table(out, os.path.join(dst, os.path.basename(path)), compression="zstd")
    writers = {}
    current = None
    files = sorted(glob.glob(os.path.join(src, "events", "*.parquet*")))
    rows = 0
    for path in files:
        source = pq.ParquetFile(path)
        for g in range(source.num_row_groups):
            group = plain_strings(source.read_row_group(g))
            merged = pa.concat_tables([events_copy(group, c) for c in range(copies)])
            merged = merged.sort_by("_inserted_at")
            days = pc.floor_temporal(merged.column("_inserted_at"), unit="day")
            for day in pc.unique(days).to_pylist():
                part = merged.filter(pc.equal(days, pa.scalar(day, days.type)))
                key = day.date()
                if current is not None and key < current and key not in writers:
                    sys.exit(f"{path}: rows ingested on {key} after {current}'s (not in ingestion order)")
                if key not in writers:
                    name = os.path.join(dst, "events", day_name(key))
                    writers[key] = pq.ParquetWriter(name, part.schema, compression="zstd")
                writers[key].write_table(part, row_group_size=ROW_GROUP)
                rows += part.num_rows
                # Ingestion order: a day before the current one gets no more rows
                # (late arrivals are late by event time, not by ingestion).
                if current is not None and key > current:
                    for old in [d for d in writers if d < key]:
                        writers.pop(old).close()
                current = key if current is None else max(current, key)
    for w in writers.values():
        w.close()
    print(f"{rows} event rows, {copies} copies, into {dst}/events")


if __name__ == "__main__":
    main()
