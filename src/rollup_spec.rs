//! What the events pass counts: the one contract between the scoring model and the
//! pass. Built from the model once (`RollupSpec::of`); the pass (`events`) reads
//! nothing else of the model and knows no event or set names, and the stages that
//! read the rollup (metrics, indicators, users, trends) find their columns through
//! the names here.
//!
//! The rollup has one row per member and UTC day with an event: `n` (events),
//! `last_us` (the latest instant), a count column per counted set of event names and
//! a latest-instant column per set an indicator reads that way. Visits, which depend
//! on the URL as well as the event, are counted in a second frame with a row per
//! member and day that has one.

use crate::model::Model;

/// A per-(member, day) column over a set of event names.
#[derive(Debug, Clone, PartialEq)]
pub struct EventColumn {
    pub column: String,
    pub events: Vec<String>,
}

/// A visit count: the events of `pages` whose URL path starts with `path_prefix`,
/// plus every event of `anywhere`, wherever it happens.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitColumn {
    pub column: String,
    pub pages: Vec<String>,
    pub path_prefix: String,
    pub anywhere: Vec<String>,
}

/// The columns the events pass builds.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupSpec {
    /// Count columns of the (member, day) rows.
    pub counts: Vec<EventColumn>,
    /// Latest-instant columns of the (member, day) rows.
    pub latest: Vec<EventColumn>,
    /// Count columns of the visit rows.
    pub visits: Vec<VisitColumn>,
}

/// The column counting the events of a set (an event set or a URL set).
pub fn count_column(set: &str) -> String {
    format!("n__{set}")
}

/// The column holding the latest instant of an event set.
pub fn latest_column(set: &str) -> String {
    format!("last__{set}")
}

/// The column counting members' page views under a product's docs prefix (a prefix
/// of its own: no set's `n__` column can take its name).
pub fn product_docs_column(product: &str) -> String {
    format!("docs_of__{product}")
}

/// Events per (member, day) row.
pub const EVENTS: &str = "n";
/// The latest instant of a (member, day) row.
pub const LAST_INSTANT: &str = "last_us";

impl RollupSpec {
    /// What the model's metrics, products, indicators and users table read.
    pub fn of(model: &Model) -> RollupSpec {
        let pageviews = model.events_of(&model.paths.pageviews);
        let mut counts = Vec::new();
        let mut visits = Vec::new();
        for set in model.counted_sets() {
            match model.url_sets.get(&set) {
                Some(u) => visits.push(VisitColumn {
                    column: count_column(&set),
                    pages: pageviews.clone(),
                    path_prefix: u.path_prefix.clone(),
                    anywhere: u
                        .also
                        .as_deref()
                        .map(|s| model.events_of(s))
                        .unwrap_or_default(),
                }),
                None => counts.push(EventColumn {
                    column: count_column(&set),
                    events: model.events_of(&set),
                }),
            }
        }
        for (name, p) in &model.products {
            visits.push(VisitColumn {
                column: product_docs_column(name),
                pages: pageviews.clone(),
                path_prefix: p.docs_prefix.clone(),
                anywhere: Vec::new(),
            });
        }
        let latest = model
            .latest_sets()
            .iter()
            .map(|set| EventColumn {
                column: latest_column(set),
                events: model.events_of(set),
            })
            .collect();
        RollupSpec {
            counts,
            latest,
            visits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_model_counts_its_sets_and_visits() {
        let spec = RollupSpec::of(&Model::default_model());
        let columns: Vec<&str> = spec.counts.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(
            columns,
            [
                "n__insight_started",
                "n__insight_saved",
                "n__query_failed",
                "n__query_ok",
                "n__feature_use",
                "n__insight_analysis",
                "n__replay_watching",
                "n__flag_editing",
                "n__experimenting",
                "n__survey_viewing",
            ]
        );
        assert_eq!(spec.counts[4].events.len(), 18);
        assert_eq!(spec.latest[0].column, "last__insight_analyzed");
        let billing = &spec.visits[1];
        assert_eq!(billing.column, "n__billing_visit");
        assert_eq!(billing.pages, ["$pageview"]);
        assert_eq!(billing.path_prefix, "/organization/billing");
        assert_eq!(billing.anywhere, ["billing v2 shown"]);
        assert_eq!(spec.visits.len(), 2 + 10);
        assert_eq!(spec.visits[2].column, "docs_of__product_analytics");
        assert_eq!(spec.visits[0].column, "n__docs_visit");
    }
}
