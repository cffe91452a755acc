//! Writing a completion batch's findings and keeping the job's finding counters with
//! them: the sum of counts per (job, data source, classifier) and the objects with
//! findings per (job, data source), which the job's status reads instead of summing
//! its findings. Only findings actually inserted count: one already recorded (the
//! same job, object, classifier and location) adds nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::db::{Arg, List, Tx, args};
use crate::store::SqlStore;
use crate::*;

/// Inserts the findings of the accepted completions `done` (`task_of`: each accepted
/// task's job and data source) and adds them to their jobs' counters.
pub(crate) async fn write(
    s: &SqlStore,
    tx: &mut Tx,
    done: &[&Completion],
    task_of: &HashMap<i64, (&str, &str)>,
) -> StoreResult<()> {
    let mut rows = Rows::default();
    let mut source_of = HashMap::new();
    for c in done {
        let Some(&(job, source)) = task_of.get(&c.lease.task_id) else {
            continue;
        };
        for f in &c.findings {
            rows.push(job, f);
            source_of.insert(f.object_id, source);
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let Some(counters) = s.sql.count_findings else {
        tx.link()
            .execute(s.sql.insert_findings, args![rows.into_arg()])
            .await?;
        return Ok(());
    };
    let inserted: Vec<(String, i64, String, i64)> = tx
        .link()
        .all(s.sql.insert_findings, args![rows.into_arg()])
        .await?;
    let mut totals: BTreeMap<(String, &str, String), i64> = BTreeMap::new();
    let mut flagged: BTreeMap<(String, &str), BTreeSet<i64>> = BTreeMap::new();
    for (job, object, classifier, count) in inserted {
        let source = source_of.get(&object).copied().unwrap_or_default();
        *totals.entry((job.clone(), source, classifier)).or_default() += count;
        flagged.entry((job, source)).or_default().insert(object);
    }
    let (mut jobs, mut sources, mut classifiers, mut sums) = (vec![], vec![], vec![], vec![]);
    for ((job, source, classifier), sum) in totals {
        jobs.push(job);
        sources.push(source.to_owned());
        classifiers.push(classifier);
        sums.push(sum);
    }
    let rows = vec![
        List::Texts(jobs),
        List::Texts(sources),
        List::Texts(classifiers),
        List::Ints(sums),
    ];
    tx.link()
        .execute(counters.totals, args![Arg::Rows(rows)])
        .await?;
    let (mut jobs, mut sources, mut objects) = (vec![], vec![], vec![]);
    for ((job, source), set) in flagged {
        jobs.push(job);
        sources.push(source.to_owned());
        objects.push(set.len() as i64);
    }
    let rows = vec![List::Texts(jobs), List::Texts(sources), List::Ints(objects)];
    tx.link()
        .execute(counters.flagged, args![Arg::Rows(rows)])
        .await?;
    Ok(())
}

/// Findings by column, as `insert_findings` binds them.
#[derive(Default)]
struct Rows {
    jobs: Vec<String>,
    objects: Vec<i64>,
    classifiers: Vec<String>,
    locations: Vec<String>,
    counts: Vec<i64>,
    samples: Vec<String>,
    confidences: Vec<f64>,
}

impl Rows {
    fn push(&mut self, job: &str, f: &NewFinding) {
        self.jobs.push(job.to_owned());
        self.objects.push(f.object_id);
        self.classifiers.push(f.classifier.clone());
        self.locations.push(f.location.clone());
        self.counts.push(f.count);
        self.samples.push(f.masked_sample.clone());
        self.confidences.push(f.confidence);
    }

    fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    fn into_arg(self) -> Arg {
        Arg::Rows(vec![
            List::Texts(self.jobs),
            List::Ints(self.objects),
            List::Texts(self.classifiers),
            List::Texts(self.locations),
            List::Ints(self.counts),
            List::Texts(self.samples),
            List::Reals(self.confidences),
        ])
    }
}
