//! `account-health report` (issue 24): the CSM's morning brief, from a run's outputs
//! and its history only. `OUT/report/index.html` (every CSM, a section each),
//! `OUT/report/<csm>.html` per CSM and `OUT/report/brief.md` (at most 20 lines per
//! CSM, for Slack).
//!
//! Per CSM, in order: who needs a human today (new risk alerts, then poor accounts
//! by ARR, then renewals within 60 days with a falling score), who is worth an upbeat
//! nudge (opportunities of accounts with no open risk and no unresolved urgent
//! ticket), and each account's detail. Pages are self-contained (inline CSS, charts
//! as hand-written inline SVG: `svg.rs`), escaped (`html.rs`), and the same outputs
//! give the same bytes. The rules chosen are in docs/RULES.md ("The morning brief").

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

pub(crate) mod html;
mod read;
pub(crate) mod svg;

use html::esc;
pub use read::{Account, Report};

/// Renewals within this many days with a falling score need a human.
const RENEWAL_DAYS: i64 = 60;
/// A renewal date is shown when it is within this many days.
const SHOW_RENEWAL_DAYS: i64 = 90;
/// A score change smaller than this is shown as steady (and is no fall).
const STEADY: f64 = 0.005;
/// Lines of `brief.md` per CSM.
const BRIEF_LINES: usize = 20;

/// Why an account needs a human today, in the order the list shows them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// A risk indicator new since the previous run.
    NewRisk,
    /// A poor health label.
    Poor,
    /// A renewal within 60 days and a score lower than the previous run's.
    RenewalFalling,
}

/// One CSM's lists.
pub struct Brief<'a> {
    pub csm: String,
    pub accounts: Vec<&'a Account>,
    /// (account, why), in the list's order.
    pub needs: Vec<(&'a Account, Need)>,
    /// (account, opportunity indicators' messages).
    pub nudges: Vec<(&'a Account, Vec<String>)>,
}

/// The CSM lists of a run (`csm`: only that CSM).
pub fn briefs<'a>(report: &'a Report, csm: Option<&str>) -> Vec<Brief<'a>> {
    let mut by_csm: BTreeMap<String, Vec<&Account>> = BTreeMap::new();
    for a in &report.accounts {
        by_csm.entry(a.csm_name()).or_default().push(a);
    }
    by_csm
        .into_iter()
        .filter(|(c, _)| csm.is_none_or(|want| want == c))
        .map(|(csm, accounts)| {
            let mut needs: Vec<(&Account, Need, (i64, String))> = Vec::new();
            for &a in &accounts {
                let need = if a
                    .alerts
                    .iter()
                    .any(|x| x.kind == "risk" && x.status == "new")
                {
                    Some(Need::NewRisk)
                } else if a.label.as_deref() == Some("poor") {
                    Some(Need::Poor)
                } else if a
                    .days_to_renewal
                    .is_some_and(|d| (0..=RENEWAL_DAYS).contains(&d))
                    && a.change.is_some_and(|c| c < -STEADY)
                {
                    Some(Need::RenewalFalling)
                } else {
                    None
                };
                if let Some(need) = need {
                    // Within a group: poor ones by ARR, largest first; the others by
                    // score, lowest first; then org_id.
                    let order = match need {
                        Need::Poor => -(a.arr().unwrap_or(0.0) * 100.0).round() as i64,
                        _ => (a.score.unwrap_or(0.0) * 1e6).round() as i64,
                    };
                    needs.push((a, need, (order, a.org_id.clone())));
                }
            }
            needs.sort_by(|x, y| (&x.1, &x.2).cmp(&(&y.1, &y.2)));
            let needing: Vec<&str> = needs.iter().map(|n| n.0.org_id.as_str()).collect();
            let nudges = accounts
                .iter()
                .filter(|a| !a.escalated() && !a.has_open_risk())
                .filter(|a| !needing.contains(&a.org_id.as_str()))
                .filter_map(|&a| {
                    let msgs: Vec<String> = a
                        .indicators
                        .iter()
                        .filter(|i| i.kind == "opportunity")
                        .map(|i| i.message.clone())
                        .collect();
                    (!msgs.is_empty()).then_some((a, msgs))
                })
                .collect();
            Brief {
                csm,
                accounts,
                needs: needs.into_iter().map(|(a, n, _)| (a, n)).collect(),
                nudges,
            }
        })
        .collect()
}

/// Writes `OUT/report/` for the run in `out`: into a staging folder, then swapped in
/// for the last report. With `csm`, only that CSM's page is written (the others are
/// kept) and their digest is printed.
pub fn write(out: &Path, csm: Option<&str>) -> Result<()> {
    let report = read::run(out)?;
    let _lock = crate::publish::lock(out)?;
    let briefs = briefs(&report, csm);
    if let Some(c) = csm {
        if briefs.is_empty() {
            return Err(crate::InputError::Usage {
                problem: format!("--csm {c:?}: no account of the run has this CSM"),
            }
            .into());
        }
    }
    crate::publish::tidy_swaps(out);
    if csm.is_some() {
        // One CSM: their page replaced in place (the others' pages are kept), their
        // digest on stdout.
        let dir = out.join("report");
        std::fs::create_dir_all(&dir)?;
        for b in &briefs {
            crate::publish::replace_file(&dir.join(page_file(&b.csm)), |tmp| {
                Ok(std::fs::write(
                    tmp,
                    page(&report, std::slice::from_ref(b), true),
                )?)
            })?;
        }
        print!("{}", brief_md(&report, &briefs));
        return Ok(());
    }
    let staging = out.join(format!(
        "{}{}",
        crate::publish::REPORT_STAGING,
        std::process::id()
    ));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let write = |name: &str, text: &str| -> Result<()> {
        let path = staging.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    for b in &briefs {
        write(
            &page_file(&b.csm),
            &page(&report, std::slice::from_ref(b), true),
        )?;
    }
    write("index.html", &page(&report, &briefs, false))?;
    write("brief.md", &brief_md(&report, &briefs))?;
    crate::publish::replace_folder(out, &staging, "report")?;
    Ok(())
}

/// `s` with every character but ASCII letters, digits, `.`, `-` and `@` written as
/// `_<hex code>_`: one-to-one, so two different values never give one name.
fn encoded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '@') {
            out.push(c);
        } else {
            out.push_str(&format!("_{:x}_", c as u32));
        }
    }
    out
}

/// The file of a CSM's page: `csm-<encoded address>.html` (never `index.html`, and
/// no two CSMs share one).
pub fn page_file(csm: &str) -> String {
    format!("csm-{}.html", encoded(csm))
}

/// The anchor of a CSM's section (distinct per CSM).
fn section_id(csm: &str) -> String {
    format!("csm-{}", encoded(csm))
}

/// The anchor of an account's detail (distinct per org id).
fn anchor(a: &Account) -> String {
    format!("org-{}", encoded(&a.org_id))
}

/// The score with an arrow against the previous run.
fn score_text(a: &Account) -> String {
    let arrow = match a.change {
        Some(c) if c > STEADY => " ▲",
        Some(c) if c < -STEADY => " ▼",
        Some(_) => " →",
        None => "",
    };
    match a.score {
        Some(s) => format!("{s:.1}{arrow}"),
        None => "unscored".into(),
    }
}

/// One sentence on why the account needs a human.
fn reason(a: &Account, need: &Need) -> String {
    let new: Vec<&str> = a
        .alerts
        .iter()
        .filter(|x| x.kind == "risk" && x.status == "new")
        .map(|x| x.message.as_str())
        .collect();
    let s = match (need, new.split_first()) {
        (Need::NewRisk, Some((first, []))) => first.to_string(),
        (Need::NewRisk, Some((first, rest))) => {
            format!("{first} (and {} more new risk(s))", rest.len())
        }
        _ => a.why.clone(),
    };
    match (s.is_empty(), need) {
        (false, _) => s,
        (true, Need::Poor) => "Labelled poor.".into(),
        (true, _) => "The score fell since the previous run.".into(),
    }
}

fn renewal_text(a: &Account) -> Option<String> {
    let days = a.days_to_renewal?;
    ((0..=SHOW_RENEWAL_DAYS).contains(&days)).then(|| {
        format!(
            "renews {} (in {days} days)",
            a.renewal_date.clone().unwrap_or_default()
        )
    })
}

const CSS: &str = "body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:16px;color:#1d1f24}\
h1{font-size:1.5em}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:2em}h3{margin-bottom:4px}\
.banner{background:#fff3cd;border:1px solid #e0c36b;padding:8px 12px;border-radius:6px}\
ul.list{padding-left:1.2em}ul.list li{margin:6px 0}.score{font-weight:600}.poor{color:#b3261e}.concerning{color:#9a6700}.healthy{color:#1a7f37}\
.detail{border:1px solid #ddd;border-radius:8px;padding:8px 12px;margin:12px 0;break-inside:avoid}\
.charts{display:flex;flex-wrap:wrap;gap:16px}.charts figure{margin:0}figcaption{font-size:.85em;color:#555}\
svg{max-width:100%;height:auto}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left}\
@media (max-width:600px){body{padding:8px;font-size:14px}.charts{display:block}}\
@media print{a{color:inherit;text-decoration:none}.detail{page-break-inside:avoid}}";

/// An HTML page with the lists and details of `briefs`; `own` is a CSM's own page
/// (links stay on the page; the index links to the CSM pages' anchors too).
fn page(report: &Report, briefs: &[Brief], own: bool) -> String {
    let title = match (own, briefs.first()) {
        (true, Some(b)) => format!("Morning brief: {}", b.csm),
        _ => "Morning brief: every CSM".to_string(),
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{CSS}</style></head><body>\n<h1>{} <small>as of {}</small></h1>\n",
        esc(&title),
        esc(&title),
        esc(&report.as_of)
    );
    for warning in &report.warnings {
        let _ = writeln!(h, "<p class=\"banner\">{}</p>", esc(warning));
    }
    if !own {
        h.push_str("<nav><h2>CSMs</h2><ul>\n");
        for b in briefs {
            let _ = writeln!(
                h,
                "<li><a href=\"#{}\">{}</a>: {} need a human, {} worth a nudge ({} accounts)</li>",
                esc(&section_id(&b.csm)),
                esc(&b.csm),
                b.needs.len(),
                b.nudges.len(),
                b.accounts.len()
            );
        }
        h.push_str("</ul></nav>\n");
    }
    for b in briefs {
        let _ = writeln!(
            h,
            "<section id=\"{}\"><h2>{}</h2>",
            esc(&section_id(&b.csm)),
            esc(&b.csm)
        );
        h.push_str("<h3>Needs a human today</h3>\n");
        if b.needs.is_empty() {
            h.push_str("<p>Nobody today.</p>\n");
        } else {
            h.push_str("<ul class=\"list needs\">\n");
            for (a, need) in &b.needs {
                let _ = write!(
                    h,
                    "<li data-org=\"{}\"><a href=\"#{}\">{}</a> <span class=\"score {}\">{}</span> {}",
                    esc(&a.org_id),
                    anchor(a),
                    esc(&a.display_name()),
                    esc(a.label.as_deref().unwrap_or("")),
                    esc(&score_text(a)),
                    esc(&reason(a, need))
                );
                if let Some(r) = renewal_text(a) {
                    let _ = write!(h, " <em>{}</em>", esc(&r));
                }
                h.push_str("</li>\n");
            }
            h.push_str("</ul>\n");
        }
        h.push_str("<h3>Worth a nudge</h3>\n");
        if b.nudges.is_empty() {
            h.push_str("<p>No opportunity today.</p>\n");
        } else {
            h.push_str("<ul class=\"list nudges\">\n");
            for (a, msgs) in &b.nudges {
                let _ = writeln!(
                    h,
                    "<li data-org=\"{}\"><a href=\"#{}\">{}</a> {}</li>",
                    esc(&a.org_id),
                    anchor(a),
                    esc(&a.display_name()),
                    esc(&msgs.join(" "))
                );
            }
            h.push_str("</ul>\n");
        }
        h.push_str("<h3>Accounts</h3>\n");
        for a in &b.accounts {
            detail(&mut h, a);
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// One account's detail block.
fn detail(h: &mut String, a: &Account) {
    let _ = writeln!(
        h,
        "<div class=\"detail\" id=\"{}\" data-org=\"{}\"><h4>{} <span class=\"score {}\">{}</span></h4>",
        anchor(a),
        esc(&a.org_id),
        esc(&a.display_name()),
        esc(a.label.as_deref().unwrap_or("")),
        esc(&score_text(a))
    );
    if let Some(r) = renewal_text(a) {
        let _ = writeln!(h, "<p>{}</p>", esc(&r));
    }
    h.push_str("<div class=\"charts\">");
    let history: Vec<(String, f64)> = a.history.clone();
    let _ = write!(
        h,
        "<figure>{}<figcaption>Health score by run</figcaption></figure>",
        svg::line(&[("score", &history)], 0.0, Some(10.0))
    );
    let events: Vec<(String, f64)> = a
        .trends
        .iter()
        .filter_map(|t| Some((t.0.clone(), t.1?)))
        .collect();
    let members: Vec<(String, f64)> = a
        .trends
        .iter()
        .filter_map(|t| Some((t.0.clone(), t.2?)))
        .collect();
    let _ = write!(
        h,
        "<figure>{}<figcaption>Weekday means per week: events (left), active members (right)</figcaption></figure>",
        svg::pair(&events, &members)
    );
    let _ = write!(
        h,
        "<figure>{}<figcaption>Category scores (0-10)</figcaption></figure>",
        svg::bars(&a.categories, 10.0)
    );
    h.push_str("</div>\n");
    if !a.indicators.is_empty() {
        h.push_str("<ul>");
        for i in &a.indicators {
            let _ = write!(h, "<li>{}: {}</li>", esc(&i.kind), esc(&i.message));
        }
        h.push_str("</ul>\n");
    }
    if let Some(d) = &a.deployment {
        let _ = write!(h, "<p>{}</p>", esc(d));
    }
    if !a.frustrated.is_empty() {
        h.push_str("<p>Frustrated users:</p><table><tr><th>email</th><th>insights started / saved (7d)</th><th>queries failed / completed (7d)</th></tr>");
        for u in &a.frustrated {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{} / {}</td><td>{} / {}</td></tr>",
                esc(&u.email),
                u.started,
                u.saved,
                u.failed,
                u.completed
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</div>\n");
}

/// `brief.md`: per CSM at most `BRIEF_LINES` lines (header, needs, nudges).
/// Text from the data made safe for Slack's Markdown: one line, no markup, no
/// mention or link syntax (`<!channel>`, `<url|text>`).
pub fn md_esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' | '\n' | '\t' => out.push(' '),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' | '_' | '~' | '`' | '[' | ']' | '|' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn brief_md(report: &Report, briefs: &[Brief]) -> String {
    let mut md = format!("# Morning brief, as of {}\n", md_esc(&report.as_of));
    for w in &report.warnings {
        let _ = writeln!(md, "> {}", md_esc(w));
    }
    for b in briefs {
        let mut lines = vec![format!(
            "## {}: {} need a human, {} worth a nudge",
            md_esc(&b.csm),
            b.needs.len(),
            b.nudges.len()
        )];
        let mut items: Vec<String> = b
            .needs
            .iter()
            .map(|(a, need)| {
                let mut l = format!(
                    "- :rotating_light: *{}* {}: {}",
                    md_esc(&a.display_name()),
                    score_text(a),
                    md_esc(&reason(a, need))
                );
                if let Some(r) = renewal_text(a) {
                    let _ = write!(l, " ({})", md_esc(&r));
                }
                l
            })
            .collect();
        items.extend(b.nudges.iter().map(|(a, msgs)| {
            format!(
                "- :seedling: *{}*: {}",
                md_esc(&a.display_name()),
                md_esc(&msgs.join(" "))
            )
        }));
        let room = BRIEF_LINES - 1;
        if items.len() > room {
            let more = items.len() - (room - 1);
            items.truncate(room - 1);
            items.push(format!(
                "- ... and {more} more in {}",
                md_esc(&page_file(&b.csm))
            ));
        }
        lines.extend(items);
        md.push('\n');
        md.push_str(&lines.join("\n"));
        md.push('\n');
    }
    md
}
