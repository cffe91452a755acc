//! How sensitive a data source's findings are, for the job status: each built-in
//! classifier has a level, and a data source takes the highest level among its
//! findings. Custom classifiers count as `LOW` unless the site says otherwise (not
//! configurable yet).

use std::collections::BTreeMap;

use meridian_wire::SensitivitySummary;

/// Credentials and identifiers whose leak is directly exploitable or regulated.
const HIGH: &[&str] = &[
    "payment_card",
    "us_ssn",
    "iban",
    "aws_secret_access_key",
    "private_key",
];

/// Personal contact data and tokens that are sensitive but rarely exploitable alone.
const MEDIUM: &[&str] = &["email", "phone_number", "jwt", "aws_access_key_id"];

fn level(classifier: &str) -> u8 {
    if HIGH.contains(&classifier) {
        3
    } else if MEDIUM.contains(&classifier) {
        2
    } else {
        1
    }
}

fn level_name(level: u8) -> &'static str {
    match level {
        3 => "HIGH",
        2 => "MEDIUM",
        1 => "LOW",
        _ => "NONE",
    }
}

/// One summary per data source of the job (`NONE` where nothing was found).
pub fn summarize(
    data_sources: &[String],
    by_source: &[(String, String, i64)],
    objects: &[(String, i64)],
) -> BTreeMap<String, SensitivitySummary> {
    let mut out: BTreeMap<String, (u8, SensitivitySummary)> = data_sources
        .iter()
        .map(|d| (d.clone(), (0, SensitivitySummary::default())))
        .collect();
    for (ds, classifier, n) in by_source {
        let (lvl, s) = out.entry(ds.clone()).or_default();
        *lvl = (*lvl).max(level(classifier));
        s.findings += n;
        *s.by_classifier.entry(classifier.clone()).or_default() += n;
    }
    for (ds, n) in objects {
        if let Some((_, s)) = out.get_mut(ds) {
            s.objects_with_findings = *n;
        }
    }
    out.into_iter()
        .map(|(ds, (lvl, mut s))| {
            s.level = level_name(lvl).to_owned();
            (ds, s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_level_wins_and_empty_sources_are_none() {
        let s = summarize(
            &["a".into(), "b".into()],
            &[
                ("a".into(), "email".into(), 3),
                ("a".into(), "iban".into(), 1),
            ],
            &[("a".into(), 2)],
        );
        assert_eq!(s["a"].level, "HIGH");
        assert_eq!((s["a"].findings, s["a"].objects_with_findings), (4, 2));
        assert_eq!(s["b"].level, "NONE");
    }
}
