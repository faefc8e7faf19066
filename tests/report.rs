//! `report` (issue 24): the morning brief from hand-built outputs with known
//! accounts: the right accounts in the right sections and order, an escalated account
//! kept out of the nudges, escaping, the digest's length, the same bytes twice.

use std::path::Path;

use polars::prelude::*;

use crate::util::*;

/// A published run in `out` made of hand-built tables (only the columns the report
/// reads), as `run` lays it out: `out/runs/r1/`, `out/current -> runs/r1`.
fn publish(out: &Path, health: DataFrame, indicators: DataFrame, alerts: DataFrame) {
    let run = out.join("runs").join("r1");
    std::fs::create_dir_all(&run).unwrap();
    write_parquet(&run.join("health.parquet"), &health);
    write_parquet(&run.join("indicators.parquet"), &indicators);
    write_parquet(&run.join("alerts.parquet"), &alerts);
    std::fs::write(
        run.join("manifest.json"),
        r#"{"as_of": "2026-11-23", "config": {"points": {"healthy": 10.0}, "categories": {"user_engagement": {"weight": 15.0}}}, "data_quality": {"events_of_unknown_members": 7}, "absent_tables": ["tickets"]}"#,
    )
    .unwrap();
    std::os::unix::fs::symlink("runs/r1", out.join("current")).unwrap();
}

/// (org, name, csm, score, label, change, mrr, renewal date, urgent tickets)
type Row<'a> = (
    &'a str,
    &'a str,
    &'a str,
    f64,
    &'a str,
    Option<f64>,
    f64,
    Option<&'a str>,
    f64,
);

fn health(rows: &[Row]) -> DataFrame {
    let renewal: Vec<Option<i32>> = rows.iter().map(|r| r.7.map(days)).collect();
    df!(
        "org_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "name" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "csm" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        "health_score" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        "health_label" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        "health_score_change" => rows.iter().map(|r| r.5).collect::<Vec<_>>(),
        "mrr" => rows.iter().map(|r| r.6).collect::<Vec<_>>(),
        "renewal_date" => renewal,
        "urgent_tickets_unresolved" => rows.iter().map(|r| r.8).collect::<Vec<_>>(),
        "user_engagement_score" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
    )
    .unwrap()
    .lazy()
    .with_column(col("renewal_date").cast(DataType::Date))
    .collect()
    .unwrap()
}

/// (org, kind, message) and, for alerts, the status.
fn rows3(rows: &[(&str, &str, &str)]) -> DataFrame {
    df!(
        "org_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "kind" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "message" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
    )
    .unwrap()
}

fn alerts(rows: &[(&str, &str, &str, &str)]) -> DataFrame {
    df!(
        "org_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "kind" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "status" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        "message" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
    )
    .unwrap()
}

/// The `data-org` values of one list (`needs` or `nudges`) of a page, in order.
fn listed(html: &str, list: &str) -> Vec<String> {
    let start = html
        .find(&format!("<ul class=\"list {list}\">"))
        .map(|i| i + 1);
    let Some(start) = start else { return vec![] };
    let end = start + html[start..].find("</ul>").unwrap();
    html[start..end]
        .split("data-org=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

fn fixture(w: &Workdir) {
    let ana = "ana@posthog.com";
    publish(
        &w.out(),
        health(&[
            (
                "a1",
                "Acme <&> \"Q\" 'R' Zürich",
                ana,
                6.0,
                "concerning",
                Some(-1.0),
                10.0,
                None,
                0.0,
            ),
            (
                "a2",
                "Small poor",
                ana,
                2.0,
                "poor",
                Some(0.0),
                100.0,
                None,
                0.0,
            ),
            ("a3", "Big poor", ana, 3.0, "poor", None, 500.0, None, 0.0),
            (
                "a4",
                "Renewing, falling",
                ana,
                8.0,
                "healthy",
                Some(-0.5),
                50.0,
                Some("2026-12-23"),
                0.0,
            ),
            (
                "a5",
                "Renewing, rising",
                ana,
                8.0,
                "healthy",
                Some(0.5),
                50.0,
                Some("2026-12-23"),
                0.0,
            ),
            (
                "a6",
                "Escalated",
                ana,
                9.0,
                "healthy",
                Some(0.0),
                50.0,
                None,
                1.0,
            ),
            (
                "a7",
                "Growing",
                ana,
                9.0,
                "healthy",
                Some(0.0),
                50.0,
                None,
                0.0,
            ),
            (
                "a8",
                "Growing but at risk",
                ana,
                9.0,
                "healthy",
                Some(0.0),
                50.0,
                Some("2027-06-01"),
                0.0,
            ),
            (
                "b1",
                "Other CSM",
                "ben@posthog.com",
                5.0,
                "concerning",
                Some(0.0),
                50.0,
                None,
                0.0,
            ),
        ]),
        rows3(&[
            ("a1", "risk", "Payment failed."),
            ("a6", "opportunity", "Started using surveys."),
            ("a7", "opportunity", "Started using <feature flags>."),
            ("a8", "opportunity", "Started using replay."),
            ("a8", "risk", "No insight analyzed for 9 days."),
            ("b1", "risk", "Inactive."),
        ]),
        alerts(&[
            ("a1", "risk", "new", "Payment failed."),
            ("a8", "risk", "ongoing", "No insight analyzed for 9 days."),
            ("b1", "risk", "new", "Inactive."),
        ]),
    );
}

fn report(w: &Workdir, extra: &[&str]) {
    let out = w.out();
    let mut args = vec!["report", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = w.cmd(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn accounts_land_in_the_right_sections_in_order_and_escalated_ones_get_no_nudge() {
    let w = Workdir::new();
    fixture(&w);
    report(&w, &[]);
    let dir = w.out().join("report");
    let ana = std::fs::read_to_string(dir.join("csm-ana@posthog.com.html")).unwrap();
    // New risk first; then poor by ARR, largest first; then a renewal within 60
    // days with a falling score. a5's renewal comes with a rising score.
    assert_eq!(listed(&ana, "needs"), ["a1", "a3", "a2", "a4"]);
    // Opportunities: a6 has an urgent ticket open, a8 an open risk: only a7.
    assert_eq!(listed(&ana, "nudges"), ["a7"]);
    // Escaped, non-ASCII kept; no raw markup of a name or message.
    assert!(ana.contains("Acme &lt;&amp;&gt; &quot;Q&quot; &#39;R&#39; Zürich"));
    assert!(!ana.contains("<&>"));
    assert!(ana.contains("Started using &lt;feature flags&gt;."));
    // The renewal within 90 days is shown; the score arrow says which way it went.
    assert!(ana.contains("renews 2026-12-23 (in 30 days)"), "{ana}");
    assert!(ana.contains("6.0 ▼"));
    // The doubtful data is a banner on every page.
    assert!(ana.contains("class=\"banner\">7 events were of people who are not members"));
    assert!(ana.contains("No tickets in this run&#39;s inputs"));
    // Self-contained: nothing to fetch.
    assert_fetches_nothing(&ana);
    // The index has every CSM, with a table of contents.
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(index.contains("href=\"#csm-ana@posthog.com\""));
    assert!(index.contains("<h2>ben@posthog.com</h2>"));
    assert_eq!(listed(&index, "needs"), ["a1", "a3", "a2", "a4"]);
    // The digest: a header and a line per account, at most 20 lines per CSM.
    let brief = std::fs::read_to_string(dir.join("brief.md")).unwrap();
    assert!(brief.contains("## ana@posthog.com: 4 need a human, 1 worth a nudge"));
    assert!(brief.contains("- :seedling: *Growing*: Started using &lt;feature flags&gt;."));
    for section in brief.split("\n## ").skip(1) {
        assert!(section.lines().count() <= 20, "{section}");
    }
    // The same outputs, the same bytes.
    let files = || -> Vec<Vec<u8>> {
        ["index.html", "csm-ana@posthog.com.html", "brief.md"]
            .iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect()
    };
    let first = files();
    report(&w, &[]);
    assert!(first == files());
}

#[test]
fn one_csm_s_page_is_rewritten_alone_and_their_digest_printed() {
    let w = Workdir::new();
    fixture(&w);
    report(&w, &[]);
    let dir = w.out().join("report");
    let index = std::fs::read(dir.join("index.html")).unwrap();
    std::fs::write(dir.join("csm-ben@posthog.com.html"), "stale").unwrap();
    let out = w.out();
    let o = w.cmd(&[
        "report",
        "--out",
        out.to_str().unwrap(),
        "--csm",
        "ben@posthog.com",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert!(
        stdout.contains("## ben@posthog.com: 1 need a human, 0 worth a nudge"),
        "{stdout}"
    );
    assert!(!stdout.contains("ana@"));
    // Ben's page is new; the index and Ana's page are as they were.
    let ben = std::fs::read_to_string(dir.join("csm-ben@posthog.com.html")).unwrap();
    assert!(ben.contains("<h2>ben@posthog.com</h2>"));
    assert_eq!(std::fs::read(dir.join("index.html")).unwrap(), index);
    assert!(dir.join("csm-ana@posthog.com.html").exists());
    let o = w.cmd(&[
        "report",
        "--out",
        out.to_str().unwrap(),
        "--csm",
        "nobody@x",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn names_from_the_data_cannot_collide_break_markdown_or_exceed_the_digest() {
    let w = Workdir::new();
    // 25 poor accounts for one CSM named like the index page, ids that differ only
    // in characters a file or anchor cannot hold, a name with Slack syntax and a
    // line break; another CSM whose address needs escaping. No renewal_date column
    // (a run from before the report): nothing breaks.
    let mut rows: Vec<(String, String)> = (0..25)
        .map(|i| (format!("p{i:02}"), format!("Poor {i:02}")))
        .collect();
    rows.push(("a.b".into(), "Dot".into()));
    rows.push(("a_b".into(), "Underscore".into()));
    rows.push((
        "a b".into(),
        "Space <!channel> *bold* [x](y)\nsecond line".into(),
    ));
    let n = rows.len();
    let csm: Vec<&str> = (0..n)
        .map(|i| if i < 25 { "index" } else { "o'neil+x@z.com" })
        .collect();
    let health = df!(
        "org_id" => rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        "name" => rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        "csm" => csm,
        "health_score" => vec![2.0; n],
        "health_label" => vec!["poor"; n],
        "mrr" => (0..n).map(|i| i as f64).collect::<Vec<_>>(),
    )
    .unwrap();
    publish(&w.out(), health, rows3(&[]), alerts(&[]));
    report(&w, &[]);
    let dir = w.out().join("report");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "brief.md",
            "csm-index.html",
            "csm-o_27_neil_2b_x@z.com.html",
            "index.html"
        ]
    );
    let page = std::fs::read_to_string(dir.join("csm-o_27_neil_2b_x@z.com.html")).unwrap();
    for id in ["org-a.b", "org-a_5f_b", "org-a_20_b"] {
        assert_eq!(page.matches(&format!("id=\"{id}\"")).count(), 1, "{id}");
    }
    let brief = std::fs::read_to_string(dir.join("brief.md")).unwrap();
    // Slack syntax is escaped, the line break is a space.
    assert!(
        brief.contains("Space &lt;!channel&gt; \\*bold\\* \\[x\\](y) second line"),
        "{brief}"
    );
    // 25 accounts: a header, 18 lines and one saying how many more.
    let index_csm = brief
        .split("\n## ")
        .find(|s| s.starts_with("index:"))
        .unwrap();
    assert_eq!(index_csm.lines().count(), 20, "{index_csm}");
    assert!(index_csm.contains("- ... and 7 more in csm-index.html"));
    // Poor by ARR, largest first.
    assert!(index_csm.lines().nth(1).unwrap().contains("*Poor 24*"));
}

#[test]
fn a_generated_run_with_history_reports_every_account() {
    let w = Workdir::new();
    w.generate(20, 60, 4);
    std::fs::write(w.path().join("c.toml"), "[run]\nfeed_check_days = 0\n").unwrap();
    let c = w.path().join("c.toml");
    for as_of in ["2026-11-09", "2026-11-16", "2026-11-23"] {
        w.run_at(as_of, &["--config", c.to_str().unwrap()]);
    }
    report(&w, &[]);
    let index = std::fs::read_to_string(w.out().join("report/index.html")).unwrap();
    let health = w.read("health");
    for org in strings(&health, "org_id") {
        assert!(index.contains(&format!("data-org=\"{org}\"><h4>")), "{org}");
    }
    // Score history has three runs: a line of three points.
    assert!(index.contains("<polyline"));
    // Every account has ingestion rows: each shows its deployment in a sentence.
    assert_eq!(
        index.matches("<p>Deployment, last 30 days: ").count(),
        health.height()
    );
}

/// Headless Chromium (Debian package `chromium`; `.ci/run` installs it when missing),
/// or `CHROMIUM` when set.
fn chromium() -> std::path::PathBuf {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return path.into();
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .expect("headless Chromium is needed: apt-get install chromium (.ci/run does)")
}

/// Chromium on `url` with `args`, every network request sent to `proxy` (a listener
/// of this test: anything it receives was a request outside the file).
fn browse(url: &str, proxy: u16, args: &[&str]) -> std::process::Output {
    std::process::Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--hide-scrollbars",
        ])
        .arg(format!("--proxy-server=http://127.0.0.1:{proxy}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .args(args)
        .arg(url)
        .output()
        .expect("runs chromium")
}

#[test]
fn a_real_browser_renders_the_page_and_requests_nothing_outside_it() {
    let w = Workdir::new();
    w.generate(12, 60, 4);
    std::fs::write(w.path().join("c.toml"), "[run]\nfeed_check_days = 0\n").unwrap();
    let c = w.path().join("c.toml");
    for as_of in ["2026-11-16", "2026-11-23"] {
        w.run_at(as_of, &["--config", c.to_str().unwrap()]);
    }
    report(&w, &[]);
    let page = w.out().join("report/index.html");
    let url = format!("file://{}", page.display());
    // Every network request goes to this listener, which notes its host. Chromium
    // itself asks Google's hosts for the time and accounts whatever the page; any
    // other host would be the page's.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hosts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let noted = hosts.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut buf = [0u8; 512];
            let n = stream.read(&mut buf).unwrap_or(0);
            let line = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            // "CONNECT host:443 ..." or "GET http://host/path ...".
            let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let host = target
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .split(['/', ':'])
                .next()
                .unwrap_or("")
                .to_string();
            // (A connection closed before any request line names nothing.)
            if !host.is_empty() {
                noted.lock().unwrap().insert(host);
            }
        }
    });
    // The DOM as the browser built it holds every account's detail.
    let dom = browse(&url, port, &["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    let health = w.read("health");
    for org in strings(&health, "org_id") {
        assert!(
            dom.contains(&format!("data-org=\"{org}\"><h4>")),
            "{org} not in the DOM"
        );
    }
    // Screenshots at desktop and phone width are not blank: far larger than a
    // blank page's at the same size.
    for (size, name) in [("1280,1600", "wide.png"), ("390,1600", "phone.png")] {
        let shot = w.path().join(name);
        let blank = w.path().join(format!("blank-{name}"));
        for (target, file) in [(url.as_str(), &shot), ("about:blank", &blank)] {
            let o = browse(
                target,
                port,
                &[
                    &format!("--window-size={size}"),
                    &format!("--screenshot={}", file.display()),
                ],
            );
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let (page_bytes, blank_bytes) = (
            std::fs::metadata(&shot).unwrap().len(),
            std::fs::metadata(&blank).unwrap().len(),
        );
        assert!(
            page_bytes > 10 * blank_bytes,
            "{name}: {page_bytes} vs blank {blank_bytes}"
        );
    }
    let browsers_own = |h: &str| {
        ["google.com", "googleapis.com", "gstatic.com", "gvt1.com"]
            .iter()
            .any(|g| h == *g || h.ends_with(&format!(".{g}")))
    };
    let hosts = hosts.lock().unwrap().clone();
    let pages: Vec<&String> = hosts.iter().filter(|h| !browsers_own(h)).collect();
    assert!(pages.is_empty(), "the page requested {pages:?}");
    // And the file names nothing to fetch.
    let html = std::fs::read_to_string(&page).unwrap();
    assert_fetches_nothing(&html);
}

#[test]
fn renewal_and_frustration_limits_hold_at_their_boundaries() {
    let w = Workdir::new();
    let c = "c@x.com";
    // as_of 2026-11-23: 2027-01-22 is 60 days away, 2027-01-23 61; 2027-02-21 is 90,
    // 2027-02-22 91. Every score fell.
    publish(
        &w.out(),
        health(&[
            (
                "r60",
                "Sixty",
                c,
                8.0,
                "healthy",
                Some(-0.5),
                1.0,
                Some("2027-01-22"),
                0.0,
            ),
            (
                "r61",
                "Sixty-one",
                c,
                8.0,
                "healthy",
                Some(-0.5),
                1.0,
                Some("2027-01-23"),
                0.0,
            ),
            (
                "r90",
                "Ninety",
                c,
                3.0,
                "poor",
                Some(-0.5),
                1.0,
                Some("2027-02-21"),
                0.0,
            ),
            (
                "r91",
                "Ninety-one",
                c,
                3.0,
                "poor",
                Some(-0.5),
                1.0,
                Some("2027-02-22"),
                0.0,
            ),
            (
                "gone",
                "Renewed yesterday",
                c,
                8.0,
                "healthy",
                Some(-0.5),
                1.0,
                Some("2026-11-22"),
                0.0,
            ),
        ]),
        rows3(&[]),
        alerts(&[]),
    );
    // Users of r60: 3 insights started and none saved (frustrated), 2 lost (not),
    // 3 failed queries (frustrated).
    let users = df!(
        "org_id" => ["r60", "r60", "r60"],
        "email" => ["lost3@x", "lost2@x", "failed3@x"],
        "insights_started_7d" => [3i64, 2, 0],
        "insights_saved_7d" => [0i64, 0, 0],
        "queries_failed_7d" => [0i64, 0, 3],
        "queries_completed_7d" => [0i64, 0, 1],
    )
    .unwrap();
    write_parquet(&w.out().join("runs/r1/users.parquet"), &users);
    report(&w, &[]);
    let page = std::fs::read_to_string(w.out().join("report/csm-c@x.com.html")).unwrap();
    // Within 60 days and falling: r60, not r61 nor one renewed yesterday; the poor
    // ones by ARR (equal: by org_id).
    assert_eq!(listed(&page, "needs"), ["r90", "r91", "r60"]);
    assert!(page.contains("renews 2027-02-21 (in 90 days)"));
    assert!(!page.contains("renews 2027-02-22"));
    assert!(page.contains("<td>lost3@x</td>") && page.contains("<td>failed3@x</td>"));
    assert!(!page.contains("lost2@x"));
}
