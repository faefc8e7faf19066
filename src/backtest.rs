//! The backtest's measures of how well a score foretells churn (issue 25): per as_of,
//! each account's risk (10 - health_score, or a signal oriented so that higher is
//! riskier) against whether it churned within the horizon. Pure functions over
//! slices; the accounts without a risk (unscored) are left out by the caller.
//!
//! The labels (`churn_days`, `label`) and the measures are here, tested by hand;
//! `cmd/backtest.rs` gathers each date's scores (as `backfill` does) and applies them.

use std::collections::BTreeMap;

use polars::prelude::*;

/// When each org churned (days since the epoch), from `accounts.churned_at` and the
/// `churns` table: an org's earliest date of either. `None` when there is no churn
/// date at all: the loader gives `accounts` a null `churned_at` when its files lack
/// the column, so "no labels" and "nobody churned" look alike, and a backtest of
/// either measures nothing (bad input).
pub fn churn_days(
    accounts: Option<&DataFrame>,
    churns: Option<&DataFrame>,
) -> PolarsResult<Option<BTreeMap<String, i32>>> {
    let sources: Vec<&DataFrame> = [accounts, churns]
        .into_iter()
        .flatten()
        .filter(|df| df.schema().contains("churned_at"))
        .collect();
    if sources.is_empty() {
        return Ok(None);
    }
    let mut days = BTreeMap::new();
    for df in sources {
        let orgs = df.column("org_id")?.str()?.clone();
        let dates = df.column("churned_at")?.cast(&DataType::Int32)?;
        for (org, day) in orgs.iter().zip(dates.i32()?.iter()) {
            if let (Some(org), Some(day)) = (org, day) {
                days.entry(org.to_string())
                    .and_modify(|d: &mut i32| *d = (*d).min(day))
                    .or_insert(day);
            }
        }
    }
    Ok((!days.is_empty()).then_some(days))
}

/// The label of an account at `as_of_day`: `None` when it had churned by then (left
/// out), else whether it churns within (as_of, as_of + horizon].
pub fn label(churn_day: Option<i32>, as_of_day: i32, horizon_days: i32) -> Option<bool> {
    match churn_day {
        Some(d) if d <= as_of_day => None,
        Some(d) => Some(d <= as_of_day + horizon_days),
        None => Some(false),
    }
}

/// The area under the ROC curve: the chance that a churned account has a higher
/// risk than one that stayed, ties counted half (the Mann-Whitney U over both
/// counts). `None` without at least one account of each kind.
pub fn auc(risk: &[f64], churned: &[bool]) -> Option<f64> {
    let positives = churned.iter().filter(|&&c| c).count();
    let negatives = churned.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Ranks from 1, tied risks sharing their mean rank.
    let mut order: Vec<usize> = (0..risk.len()).collect();
    order.sort_by(|&a, &b| risk[a].total_cmp(&risk[b]));
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && risk[order[end]] == risk[order[start]] {
            end += 1;
        }
        // Ranks start+1 ..= end: their mean.
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum += mean_rank * order[start..end].iter().filter(|&&i| churned[i]).count() as f64;
        start = end;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// The ROC curve: (false positive rate, true positive rate) from (0, 0) to (1, 1),
/// a point after each group of tied risks, riskiest first. Empty without at least one
/// account of each kind.
pub fn roc(risk: &[f64], churned: &[bool]) -> Vec<(f64, f64)> {
    let positives = churned.iter().filter(|&&c| c).count() as f64;
    let negatives = churned.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return vec![];
    }
    let mut order: Vec<usize> = (0..risk.len()).collect();
    order.sort_by(|&a, &b| risk[b].total_cmp(&risk[a]));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        if churned[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| risk[j] != risk[i]);
        if last_of_tie {
            points.push((fp / negatives, tp / positives));
        }
    }
    points
}

/// The churn rate of the riskiest tenth of the accounts (ceil(n / 10) of them) over
/// the churn rate of all. Accounts tied at the cut count by the share of them that
/// fits (the expected rate over every order of the ties). `None` when nobody churned
/// or there are no accounts.
pub fn top_decile_lift(risk: &[f64], churned: &[bool]) -> Option<f64> {
    let n = risk.len();
    let all_churned = churned.iter().filter(|&&c| c).count();
    if n == 0 || all_churned == 0 {
        return None;
    }
    let top = n.div_ceil(10);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| risk[b].total_cmp(&risk[a]));
    let cut = risk[order[top - 1]];
    let above: Vec<usize> = order.iter().copied().filter(|&i| risk[i] > cut).collect();
    let tied: Vec<usize> = order.iter().copied().filter(|&i| risk[i] == cut).collect();
    let churned_above = above.iter().filter(|&&i| churned[i]).count() as f64;
    let churned_tied = tied.iter().filter(|&&i| churned[i]).count() as f64;
    let slots = (top - above.len()) as f64;
    let churned_top = churned_above + churned_tied * slots / tied.len() as f64;
    let top_rate = churned_top / top as f64;
    let base_rate = all_churned as f64 / n as f64;
    Some(top_rate / base_rate)
}

/// Precision (churned among the flagged) and recall (flagged among the churned) of
/// a flag such as "labelled poor"; each `None` when its denominator is 0.
pub fn precision_recall(flagged: &[bool], churned: &[bool]) -> (Option<f64>, Option<f64>) {
    let both = flagged
        .iter()
        .zip(churned)
        .filter(|(&f, &c)| f && c)
        .count() as f64;
    let flagged_n = flagged.iter().filter(|&&f| f).count() as f64;
    let churned_n = churned.iter().filter(|&&c| c).count() as f64;
    let ratio = |d: f64| (d > 0.0).then(|| both / d);
    (ratio(flagged_n), ratio(churned_n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half_worked_by_hand() {
        // Churned risks {3, 2}, stayed {2, 1}: pairs (3,2) 1, (3,1) 1, (2,2) 0.5,
        // (2,1) 1: 3.5 of 4.
        assert_eq!(
            auc(&[3.0, 2.0, 2.0, 1.0], &[true, true, false, false]),
            Some(0.875)
        );
        // Perfectly wrong, and all tied.
        assert_eq!(auc(&[1.0, 2.0], &[true, false]), Some(0.0));
        assert_eq!(auc(&[5.0, 5.0, 5.0], &[true, false, false]), Some(0.5));
        // Order of the rows changes nothing.
        assert_eq!(
            auc(&[1.0, 2.0, 3.0, 2.0], &[false, false, true, true]),
            Some(0.875)
        );
        // One kind only: no AUC.
        assert_eq!(auc(&[1.0, 2.0], &[true, true]), None);
        assert_eq!(auc(&[], &[]), None);
    }

    #[test]
    fn roc_steps_over_tied_groups_worked_by_hand() {
        // Riskiest first: 3 (churned): (0, 1/2); the tie at 2 (one of each): (1/2, 1);
        // 1 (stayed): (1, 1). Its area is the AUC, 0.875.
        let points = roc(&[3.0, 2.0, 2.0, 1.0], &[true, true, false, false]);
        assert_eq!(points, [(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        let area: f64 = points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum();
        assert_eq!(area, 0.875);
        assert!(roc(&[1.0], &[true]).is_empty());
    }

    #[test]
    fn top_decile_lift_worked_by_hand() {
        // 10 accounts, risks 10 .. 1; the riskiest and one other churned. The top
        // tenth is 1 account, churned: rate 1 against 2 / 10 = 0.2: lift 5.
        let risk: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let mut churned = vec![false; 10];
        churned[0] = true;
        churned[7] = true;
        assert_eq!(top_decile_lift(&risk, &churned), Some(5.0));
        // 20 accounts, top tenth = 2 slots; three tied at the top risk 9, one of them
        // churned, plus one churned lower down: 2 of the 3 tied fit, so 1 x 2/3
        // churned expected in the top 2: rate 1/3; base 2 / 20 = 0.1: lift 10/3.
        let mut risk = vec![1.0; 20];
        risk[0] = 9.0;
        risk[1] = 9.0;
        risk[2] = 9.0;
        let mut churned = vec![false; 20];
        churned[2] = true;
        churned[10] = true;
        let lift = top_decile_lift(&risk, &churned).unwrap();
        assert!((lift - 10.0 / 3.0).abs() < 1e-12, "{lift}");
        // 11 accounts: the top tenth is ceil(1.1) = 2.
        let risk: Vec<f64> = (1..=11).rev().map(f64::from).collect();
        let mut churned = vec![false; 11];
        churned[1] = true; // second riskiest: in the top 2; rate 1/2 over 1/11
        assert!((top_decile_lift(&risk, &churned).unwrap() - 5.5).abs() < 1e-12);
        // Nobody churned: no lift.
        assert_eq!(top_decile_lift(&[1.0, 2.0], &[false, false]), None);
    }

    #[test]
    fn precision_and_recall_worked_by_hand() {
        // Flagged a, b, c; churned b, c, d: 2 of 3 flagged churned, 2 of 3 churned flagged.
        let flagged = [true, true, true, false, false];
        let churned = [false, true, true, true, false];
        let (p, r) = precision_recall(&flagged, &churned);
        assert!((p.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // Nothing flagged: no precision; nobody churned: no recall.
        assert_eq!(precision_recall(&[false], &[true]), (None, Some(0.0)));
        assert_eq!(precision_recall(&[true], &[false]), (Some(0.0), None));
    }

    #[test]
    fn labels_leave_out_the_churned_and_look_within_the_horizon() {
        // as_of day 100, horizon 30: churned on day 100 or before: left out;
        // 101 .. 130: churned; 131 or never: stayed.
        assert_eq!(label(Some(99), 100, 30), None);
        assert_eq!(label(Some(100), 100, 30), None);
        assert_eq!(label(Some(101), 100, 30), Some(true));
        assert_eq!(label(Some(130), 100, 30), Some(true));
        assert_eq!(label(Some(131), 100, 30), Some(false));
        assert_eq!(label(None, 100, 30), Some(false));
    }

    #[test]
    fn churn_days_take_the_earliest_of_both_sources() {
        let date = |v: Vec<Option<i32>>| {
            Column::new("churned_at".into(), v)
                .cast(&DataType::Date)
                .unwrap()
        };
        let accounts = DataFrame::new_infer_height(vec![
            Column::new("org_id".into(), ["a", "b", "c"]),
            date(vec![Some(200), None, Some(50)]),
        ])
        .unwrap();
        let churns = DataFrame::new_infer_height(vec![
            Column::new("org_id".into(), ["a", "d", "c"]),
            date(vec![Some(150), Some(300), Some(80)]),
        ])
        .unwrap();
        let days = churn_days(Some(&accounts), Some(&churns)).unwrap().unwrap();
        assert_eq!(
            days.into_iter().collect::<Vec<_>>(),
            [("a".into(), 150), ("c".into(), 50), ("d".into(), 300)]
        );
        // No churned_at anywhere, or only nulls: no labels.
        let plain = DataFrame::new_infer_height(vec![Column::new("org_id".into(), ["a"])]).unwrap();
        assert_eq!(churn_days(Some(&plain), None).unwrap(), None);
        let nulls = DataFrame::new_infer_height(vec![
            Column::new("org_id".into(), ["a"]),
            date(vec![None]),
        ])
        .unwrap();
        assert_eq!(churn_days(Some(&nulls), None).unwrap(), None);
        assert_eq!(churn_days(None, None).unwrap(), None);
    }
}
