"""Independent reading of SPEC sections 5-8 (health, metrics, indicators) in DuckDB,
compared with a run's outputs; prints every difference and a summary line.
usage: health_indicators.py INPUT_DIR OUT_DIR [AS_OF]"""
import sys, math, datetime
import duckdb

inp, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
q = lambda s: con.execute(s).fetchall()
DAY = 86400 * 10**6

con.execute(f"create view ev as select epoch_us(timestamp) t, event, distinct_id, org_id, current_url from read_parquet('{inp}/events/*/*.parquet')")
con.execute(f"create table mem as select org_id, distinct_id, epoch_us(joined_at) j, epoch_us(removed_at) r, role, email from '{inp}/members.parquet'")
con.execute(f"create table us as select * from '{inp}/usage.parquet'")
con.execute(f"create table acc as select * from '{inp}/accounts.parquet'")
con.execute(f"create table tk as select org_id, priority, epoch_us(created_at) c, epoch_us(solved_at) s from '{inp}/tickets.parquet'")
con.execute(f"create table mt as select org_id, epoch_us(started_at) t from '{inp}/meetings.parquet'")
con.execute(f"create table pay as select org_id, epoch_us(occurred_at) t, status from '{inp}/payments.parquet'")
con.execute(f"create table rc as select org_id, distinct_id, epoch_us(changed_at) t, old_role, new_role from '{inp}/role_changes.parquet'")

if len(sys.argv) > 3:
    as_of = datetime.date.fromisoformat(sys.argv[3])
else:
    mx = q("select max(t) from ev")[0][0]
    as_of = datetime.date(1970, 1, 1) + datetime.timedelta(days=mx // DAY + 1)
A = (as_of - datetime.date(1970, 1, 1)).days * DAY
AD = (as_of - datetime.date(1970, 1, 1)).days  # days
print("as_of", as_of)

SETS = {
    "insight_analysis": ["insight analyzed", "insight viewed", "insight created", "insight saved",
                         "dashboard analyzed", "viewed dashboard", "dashboard created", "dashboard updated"],
    "replay_watching": ["recording viewed", "recording analyzed"],
    "flag_editing": ["feature flag created", "feature flag updated"],
    "experimenting": ["experiment created", "experiment viewed", "experiment launched"],
    "survey_viewing": ["survey created", "survey viewed", "survey edited"],
}
SETS["feature_use"] = sum(SETS.values(), [])
PRODUCTS = {
    "product_analytics": ("event_count_in_period", "insight_analysis", "/docs/product-analytics"),
    "session_replay": ("recording_count_in_period", "replay_watching", "/docs/session-replay"),
    "feature_flags": ("decide_requests_count_in_period", "flag_editing", "/docs/feature-flags"),
    "experiments": (None, "experimenting", "/docs/experiments"),
    "surveys": ("survey_responses_count_in_period", "survey_viewing", "/docs/surveys"),
    "data_warehouse": ("rows_synced_in_period", None, "/docs/data-warehouse"),
    "error_tracking": ("exceptions_captured_in_period", None, "/docs/error-tracking"),
    "llm_analytics": ("ai_event_count_in_period", None, "/docs/llm-analytics"),
    "cdp": ("cdp_billable_invocations_in_period", None, "/docs/cdp"),
    "batch_exports": ("rows_exported_in_period", None, "/docs/cdp/batch-exports"),
}
lst = lambda xs: "[" + ",".join("'" + x + "'" for x in xs) + "]"

# member events before as_of, with path
con.execute(f"""create table me as select e.org_id, e.distinct_id, e.t, e.event,
  regexp_extract(e.current_url, '^(?:[A-Za-z][A-Za-z0-9+.\\-]*://[^/?#]*)?([^?#]*)', 1) path
  from ev e semi join (select distinct org_id, distinct_id from mem) m
  on e.org_id = m.org_id and e.distinct_id = m.distinct_id where e.t < {A}""")
orgs = [r[0] for r in q("select org_id from (select org_id from acc union select org_id from mem) order by 1")]

def per_org(sql):
    return {r[0]: r[1] for r in q(sql)}

def members_at(t):
    return per_org(f"select org_id, count(distinct distinct_id) from mem where j < {t} and (r is null or r >= {t}) group by 1")

def with_event(days0, days1, events=None):  # window [A-days0, A-days1)
    cond = f"and event in (select unnest({lst(events)}))" if events else ""
    return per_org(f"select org_id, count(distinct distinct_id) from me where t >= {A - days0*DAY} and t < {A - days1*DAY} {cond} group by 1")

def count_events(days, cond):
    return per_org(f"select org_id, count(*) from me where t >= {A - days*DAY} and {cond} group by 1")

def usage_sum(counter, d0, d1):  # dates in [AD-d0, AD-d1)
    return per_org(f"select org_id, sum(coalesce({counter},0)) from us where date >= date '{as_of}' - {d0} and date < date '{as_of}' - {d1} group by 1")

def dec(prev, cur):
    if prev is None or cur is None or prev == 0:
        return None
    return 100 * (prev - cur) / prev

def pct(n, d):
    return None if not d else 100 * n / d

m_now, m_prev = members_at(A), members_at(A - 30*DAY)
last_seen = per_org("select org_id, max(t) from me group by 1")
act, act_prev = with_event(30, 0), with_event(60, 30)
feat = with_event(30, 0, SETS["feature_use"])
tk30 = per_org(f"select org_id, count(*) from tk where c >= {A-30*DAY} and c < {A} group by 1")
urg = per_org(f"select org_id, count(*) from tk where priority='urgent' and c < {A} and (s is null or s >= {A}) group by 1")
docs7 = count_events(7, "event='$pageview' and starts_with(path, '/docs')")
qok = count_events(7, "event='query completed'")
qf = count_events(7, "event='query failed'")
lm = per_org(f"select org_id, max(t) from mt where t < {A} group by 1")
lt = per_org(f"select org_id, max(c) from tk where c < {A} group by 1")
ucols = {r[0] for r in q("describe us")}

def in_use(p, d0, d1):
    counter, eng, _ = PRODUCTS[p]
    s = usage_sum(counter, d0, d1) if counter in ucols else {}
    e = with_event(d0, d1, SETS[eng]) if eng else {}
    return {o for o in orgs if (s.get(o) or 0) > 0 or (e.get(o) or 0) > 0}

use30 = {p: in_use(p, 30, 0) for p in PRODUCTS}
use60 = {p: in_use(p, 60, 0) for p in PRODUCTS}
use7 = {p: in_use(p, 7, 0) for p in PRODUCTS}
use37_7 = {p: in_use(p, 37, 7) for p in PRODUCTS}

def udec(counter):
    c, p = usage_sum(counter, 30, 0), usage_sum(counter, 60, 30)
    return {o: dec(p.get(o, 0), c.get(o, 0)) for o in orgs}

METRICS = {}  # name -> (category, product, value dict, bands, null_is_poor)
def days_since(d, o):
    return None if d.get(o) is None else (A - d[o]) / DAY
def M(name, cat, prod, vals, poor, healthy, nip=False):
    METRICS[name] = (cat, prod, vals, poor, healthy, nip)

M("days_since_last_seen", "user_engagement", None, {o: days_since(last_seen, o) for o in orgs}, lambda v: v > 5, lambda v: v <= 1, True)
M("active_user_pct", "user_engagement", None, {o: pct(act.get(o, 0), m_now.get(o, 0)) for o in orgs}, lambda v: v < 20, lambda v: v >= 40)
M("active_user_pct_decrease", "user_engagement", None,
  {o: dec(pct(act_prev.get(o, 0), m_prev.get(o, 0)), pct(act.get(o, 0), m_now.get(o, 0))) for o in orgs}, lambda v: v > 20, lambda v: v <= 5)
M("users_engaging_with_features", "user_engagement", None, {o: feat.get(o, 0) for o in orgs}, lambda v: v < 3, lambda v: v >= 10)
M("tickets_created_30d", "product_experience", None, {o: tk30.get(o, 0) for o in orgs}, lambda v: v > 10, lambda v: v <= 5)
M("urgent_tickets_unresolved", "product_experience", None, {o: urg.get(o, 0) for o in orgs}, lambda v: v > 2, lambda v: v <= 0)
M("docs_visits_7d", "product_experience", None, {o: docs7.get(o, 0) for o in orgs}, lambda v: v > 100, lambda v: v <= 20)
M("query_failure_rate_7d", "product_experience", None, {o: pct(qf.get(o, 0), qok.get(o, 0) + qf.get(o, 0)) for o in orgs}, lambda v: v > 13, lambda v: v <= 5)
M("days_since_last_meeting", "company_engagement", None, {o: days_since(lm, o) for o in orgs}, lambda v: v > 90, lambda v: v <= 30, True)
M("days_since_last_ticket", "company_engagement", None, {o: days_since(lt, o) for o in orgs}, lambda v: v > 90, lambda v: v <= 30, True)
M("product_count", "company_engagement", None, {o: sum(o in use30[p] for p in PRODUCTS) for o in orgs}, lambda v: v < 3, lambda v: v > 6)
dec_b = (lambda v: v > 20, lambda v: v <= 5)
M("event_count_decrease_30d", "product_analytics", "product_analytics", udec("event_count_in_period"), *dec_b)
pa_b = (lambda v: v < 20, lambda v: v >= 40)
fl_b = (lambda v: v < 5, lambda v: v >= 20)
def mpct(s, days):
    w = with_event(days, 0, SETS[s])
    return {o: pct(w.get(o, 0), m_now.get(o, 0)) for o in orgs}
M("insight_analyzers_pct", "product_analytics", "product_analytics", mpct("insight_analysis", 14), *pa_b)
M("recording_count_decrease_30d", "session_replay", "session_replay", udec("recording_count_in_period"), *dec_b)
M("replay_watchers_pct", "session_replay", "session_replay", mpct("replay_watching", 14), *pa_b)
M("decide_requests_decrease_30d", "feature_flags_experiments", "feature_flags", udec("decide_requests_count_in_period"), *dec_b)
M("flag_editors_pct", "feature_flags_experiments", "feature_flags", mpct("flag_editing", 30), *fl_b)
M("experiment_users_pct", "feature_flags_experiments", "experiments", mpct("experimenting", 14), *fl_b)
M("survey_viewers_pct", "surveys_data_warehouse", "surveys", mpct("survey_viewing", 14), *fl_b)
M("rows_synced_decrease_30d", "surveys_data_warehouse", "data_warehouse", udec("rows_synced_in_period"), *dec_b)

CATS = {"user_engagement": (15, None), "product_experience": (5, None), "company_engagement": (5, None),
        "product_analytics": (33, ["product_analytics"]), "session_replay": (20, ["session_replay"]),
        "feature_flags_experiments": (17, ["feature_flags", "experiments"]),
        "surveys_data_warehouse": (5, ["surveys", "data_warehouse"])}

ref = {}
for o in orgs:
    row = {}
    pts = {c: [] for c in CATS}
    for name, (cat, prod, vals, poor, healthy, nip) in METRICS.items():
        v = vals.get(o)
        row[name] = v
        adopted = CATS[cat][1] is None or any(o in use60[p] for p in CATS[cat][1])
        if not adopted or (prod and o not in use60[prod]):
            continue
        if v is None:
            if nip:
                pts[cat].append(0)
            continue
        pts[cat].append(0 if poor(v) else 10 if healthy(v) else 5)
    num = den = 0
    for c, (w, _) in CATS.items():
        s = sum(pts[c]) / len(pts[c]) if pts[c] else None
        row[c + "_score"] = s
        if s is not None:
            num += w * s; den += w
    row["health_score"] = num / den if den else None
    h = row["health_score"]
    row["health_label"] = None if h is None else "poor" if h < 10/3 else "concerning" if h < 20/3 else "healthy"
    ref[o] = row

# weekday-only event volume (section 8)
def wsum(d0, d1, weekdays):
    cond = "and isodow(date) <= 5" if weekdays else ""
    return usage_sum("event_count_in_period", d0, d1) if not weekdays else per_org(
        f"select org_id, sum(coalesce(event_count_in_period,0)) from us where date >= date '{as_of}' - {d0} and date < date '{as_of}' - {d1} {cond} group by 1")
wc, wp = wsum(7, 0, True), wsum(14, 7, True)
ac, ap = wsum(7, 0, False), wsum(14, 7, False)
for o in orgs:
    ref[o]["weekday_event_volume_drop_7d"] = dec(wp.get(o, 0), wc.get(o, 0))
    ref[o]["event_volume_drop_7d"] = dec(ap.get(o, 0), ac.get(o, 0))

# indicators
ind = set()
accs = {r[0]: r[1:] for r in q("select org_id, mrr, forecasted_mrr, plan, renewal_date from acc")}
for o, (mrr, f, plan, ren) in accs.items():
    if mrr is not None and f is not None and mrr > 0:
        ch = 100 * (f - mrr) / mrr
        if ch < -10: ind.add((o, "forecasted_mrr_decrease", None))
        if ch > 10: ind.add((o, "forecasted_mrr_growth", None))
    if plan == "startup" and f is not None and f > 0: ind.add((o, "startup_credit_running_out", None))
    if ren is not None and o in ref:
        d = (ren - as_of).days
        ds = ref[o]["days_since_last_seen"]
        if 0 <= d <= 60 or (0 <= d <= 90 and (ds is None or ds > 7)):
            ind.add((o, "renewal_upcoming", None))
bill = count_events(7, "(event='billing v2 shown' or (event='$pageview' and starts_with(path, '/organization/billing')))")
for o in orgs:
    if bill.get(o, 0) > 1: ind.add((o, "billing_page_visits", None))
    r = ref[o]["query_failure_rate_7d"]
    if r is not None and r > 10: ind.add((o, "query_failure_rate_high", None))
    d = ref[o]["weekday_event_volume_drop_7d"]
    if d is not None and d > 20: ind.add((o, "event_volume_drop", None))
lia = per_org("select org_id, max(t) from me where event='insight analyzed' group by 1")
for o, t in lia.items():
    if (A - t) / DAY > 7: ind.add((o, "no_insights_analyzed", None))
for o, st in q(f"""select org_id, arg_max(status, t*2 + (status='succeeded')::int) from pay where t < {A} group by 1"""):
    t = per_org(f"select org_id, max(t) from pay where t < {A} and org_id='{o}' group by 1")[o]
    if st == "failed" and t >= A - 30*DAY: ind.add((o, "payment_failed", None))
for (o,) in q(f"select distinct org_id from rc where t >= {A-14*DAY} and t < {A} and old_role='owner' and (new_role is null or new_role<>'owner')"):
    ind.add((o, "owner_removed", None))
for (o,) in q(f"select distinct org_id from rc where t >= {A-14*DAY} and t < {A} and new_role='owner' and (old_role is null or old_role<>'owner')"):
    ind.add((o, "owner_added", None))
act14 = with_event(14, 0)
for o in orgs:
    if m_now.get(o, 0) > 0 and act14.get(o, 0) == 0: ind.add((o, "inactive_org", None))
st7, sv7 = count_events(7, "event='insight created'"), count_events(7, "event='insight saved'")
for o in orgs:
    s = st7.get(o, 0)
    if s >= 20 and 100 * sv7.get(o, 0) / s < 10: ind.add((o, "lost_insights", None))
for p, (_, _, prefix) in PRODUCTS.items():
    dv = count_events(7, f"event='$pageview' and starts_with(path, '{prefix}')")
    for o in orgs:
        if o in use7[p] and o not in use37_7[p]: ind.add((o, "new_product_adoption", p))
        if o not in use30[p] and dv.get(o, 0) >= 3: ind.add((o, "product_interest", p))

# compare
got = {r[0]: r for r in con.execute(f"select * from '{out}/health.parquet'").fetchall()}
cols = [d[0] for d in con.execute(f"select * from '{out}/health.parquet' limit 0").description]
bad = 0
assert set(got) == set(orgs), (len(got), len(orgs))
for o in orgs:
    g = dict(zip(cols, got[o]))
    for k, v in ref[o].items():
        w = g[k]
        same = (v is None and w is None) or (v is not None and w is not None and (
            v == w if isinstance(v, str) else math.isclose(v, w, rel_tol=1e-12, abs_tol=1e-12)))
        if not same:
            bad += 1
            if bad < 40: print("DIFF", o, k, "ref", v, "got", w)
gi = {(r[0], r[1], r[2]) for r in q(f"select org_id, indicator, product from '{out}/indicators.parquet' where indicator <> 'health_score_drop'")}
for x in sorted(ind - gi, key=str)[:20]: print("MISSING indicator", x)
for x in sorted(gi - ind, key=str)[:20]: print("EXTRA indicator", x)
print("orgs", len(orgs), "value diffs", bad, "indicators ref", len(ind), "got", len(gi),
      "missing", len(ind - gi), "extra", len(gi - ind))
from collections import Counter
print(Counter(i[1] for i in ind))
sys.exit(1 if bad or (ind ^ gi) else 0)
