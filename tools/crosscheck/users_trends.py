"""The users and trends tables (SPEC 8, 9) vs an independent reading in DuckDB.
usage: users_trends.py INPUT_DIR OUT_DIR [AS_OF]"""
import sys, math, datetime, duckdb
inp, out = sys.argv[1], sys.argv[2]
con = duckdb.connect(); con.execute("SET TimeZone='UTC'")
q = lambda s: con.execute(s).fetchall()
DAY = 86400 * 10**6
con.execute(f"create view ev as select epoch_us(timestamp) t, event, distinct_id, org_id from read_parquet('{inp}/events/*/*.parquet')")
con.execute(f"create table mem as select org_id, distinct_id, epoch_us(joined_at) j, epoch_us(removed_at) r, role, email from '{inp}/members.parquet'")
con.execute(f"create table us as select * from '{inp}/usage.parquet'")
if len(sys.argv) > 3: as_of = datetime.date.fromisoformat(sys.argv[3])
else: as_of = datetime.date(1970,1,1) + datetime.timedelta(days=q("select max(t) from ev")[0][0] // DAY + 1)
A = (as_of - datetime.date(1970,1,1)).days * DAY
con.execute(f"""create table me as select e.* from ev e semi join (select distinct org_id, distinct_id from mem) m
  on e.org_id=m.org_id and e.distinct_id=m.distinct_id where e.t < {A}""")
ref = q(f"""with latest as (select org_id, distinct_id, arg_max(email, j) email, arg_max(role, j) role from mem group by 1,2),
 s as (select org_id, distinct_id, max(t) last,
   count(*) filter (where t >= {A-30*DAY}) e30,
   count(*) filter (where t >= {A-7*DAY} and event='insight created') st,
   count(*) filter (where t >= {A-7*DAY} and event='insight saved') sv,
   count(*) filter (where t >= {A-7*DAY} and event='query failed') qf,
   count(*) filter (where t >= {A-7*DAY} and event='query completed') qc from me group by 1,2)
 select l.org_id, l.distinct_id, l.email, l.role, ({A} - s.last)/{DAY}::double, coalesce(e30,0), coalesce(st,0), coalesce(sv,0), coalesce(qf,0), coalesce(qc,0)
 from latest l left join s using (org_id, distinct_id) order by 1,2""")
got = q(f"select org_id, distinct_id, email, role, days_since_last_seen, events_30d, insights_started_7d, insights_saved_7d, queries_failed_7d, queries_completed_7d from '{out}/users.parquet' order by 1,2")
def eq(a, b):
    if a is None or b is None: return a is None and b is None
    if isinstance(a, float) or isinstance(b, float): return math.isclose(a, b, rel_tol=1e-12)
    return a == b
bad = 0
assert len(ref) == len(got), (len(ref), len(got))
for r, g in zip(ref, got):
    if not all(eq(a, b) for a, b in zip(r, g)):
        bad += 1
        if bad < 10: print("USERS DIFF", r, g)
print("users", len(ref), "diffs", bad)
user_diffs = bad
# trends
orgs = [r[0] for r in q(f"select org_id from (select org_id from mem union select org_id from '{inp}/accounts.parquet') order by 1")]
monday = as_of - datetime.timedelta(days=as_of.weekday())  # week containing as_of starts here; full weeks end before as_of
weeks = [monday - datetime.timedelta(weeks=k) for k in range(12, 0, -1)]
counters = [c for (c,) in q("select column_name from (describe us)") if c.endswith("_in_period")]
bad = 0
gt = {(r[0], r[1]): r for r in q(f"select * from '{out}/trends.parquet'")}
gcols = [d[0] for d in con.execute(f"select * from '{out}/trends.parquet' limit 0").description]
for w in weeks:
    us = {r[0]: r[1:] for r in q(f"select org_id, {', '.join('sum(coalesce('+c+',0))' for c in counters)} from us where date >= date '{w}' and date < date '{w}' + 5 group by 1")}
    W = (w - datetime.date(1970,1,1)).days * DAY
    am = {r[0]: r[1] for r in q(f"select org_id, count(*) from (select distinct org_id, distinct_id, t // {DAY} d from me where t >= {W} and t < {W + 5*DAY}) group by 1")}
    for o in orgs:
        g = gt.get((o, w))
        if g is None: bad += 1; print("MISSING", o, w); continue
        g = dict(zip(gcols, g))
        vals = us.get(o, [0]*len(counters))
        for c, v in zip(counters, vals):
            if not eq(float(v or 0) / 5, g[c + "_weekday_mean"]): bad += 1; print("T", o, w, c, v, g[c + "_weekday_mean"])
        if not eq(am.get(o, 0) / 5, g["active_members_weekday_mean"]): bad += 1; print("A", o, w, am.get(o, 0), g["active_members_weekday_mean"])
print("trends rows", len(gt), "expected", len(orgs) * 12, "diffs", bad)
sys.exit(1 if bad or user_diffs else 0)
