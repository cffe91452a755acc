//! Fair sharing: which active job gets the next free worker.
//!
//! * `ROUND`: jobs take turns, one task each, in creation order, resuming where the
//!   last pick stopped. A job of 20 tasks behind one of 2,000 gets every other slot.
//! * `WEIGHTED`: smooth weighted round-robin (as in nginx) on job priority: each
//!   pick adds every eligible job's weight to its credit, the job with most credit
//!   wins and pays the total weight back. A job of weight w gets w/Σw of the slots,
//!   interleaved rather than in bursts, and no job with tasks starves.

use std::collections::{HashMap, VecDeque};

use meridian_config::FairSharingPolicy;

/// One active job as the policy sees it.
pub struct Candidate<'a> {
    pub job_id: &'a str,
    pub weight: i64,
    pub cache: &'a mut VecDeque<i64>,
}

/// Policy state that persists across picks.
#[derive(Debug, Default)]
pub struct FairShare {
    cursor: usize,
    credit: HashMap<String, i64>,
}

impl FairShare {
    /// Takes up to `n` task ids from the candidates' caches.
    pub fn pick(
        &mut self,
        policy: FairSharingPolicy,
        jobs: &mut [Candidate<'_>],
        n: usize,
    ) -> Vec<i64> {
        match policy {
            FairSharingPolicy::Round => self.round(jobs, n),
            FairSharingPolicy::Weighted => self.weighted(jobs, n),
        }
    }

    fn round(&mut self, jobs: &mut [Candidate<'_>], n: usize) -> Vec<i64> {
        let mut picked = Vec::with_capacity(n);
        if jobs.is_empty() {
            return picked;
        }
        let mut idle_in_a_row = 0;
        while picked.len() < n && idle_in_a_row < jobs.len() {
            let i = self.cursor % jobs.len();
            self.cursor = self.cursor.wrapping_add(1);
            match jobs[i].cache.pop_front() {
                Some(id) => {
                    picked.push(id);
                    idle_in_a_row = 0;
                }
                None => idle_in_a_row += 1,
            }
        }
        picked
    }

    fn weighted(&mut self, jobs: &mut [Candidate<'_>], n: usize) -> Vec<i64> {
        self.credit
            .retain(|id, _| jobs.iter().any(|j| j.job_id == id));
        let mut picked = Vec::with_capacity(n);
        while picked.len() < n {
            let eligible: Vec<usize> = (0..jobs.len())
                .filter(|&i| !jobs[i].cache.is_empty())
                .collect();
            if eligible.is_empty() {
                break;
            }
            let total: i64 = eligible.iter().map(|&i| jobs[i].weight.max(1)).sum();
            let mut best = eligible[0];
            for &i in &eligible {
                let c = self.credit.entry(jobs[i].job_id.to_owned()).or_insert(0);
                *c += jobs[i].weight.max(1);
            }
            for &i in &eligible {
                if self.credit[jobs[i].job_id] > self.credit[jobs[best].job_id] {
                    best = i;
                }
            }
            *self
                .credit
                .get_mut(jobs[best].job_id)
                .expect("credited above") -= total;
            picked.extend(jobs[best].cache.pop_front());
        }
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caches(sizes: &[(i64, usize)]) -> Vec<VecDeque<i64>> {
        sizes
            .iter()
            .map(|&(base, n)| (0..n as i64).map(|k| base + k).collect())
            .collect()
    }

    #[test]
    fn round_alternates_between_jobs() {
        let mut cs = caches(&[(1000, 100), (2000, 3)]);
        let (a, b) = cs.split_at_mut(1);
        let mut jobs = vec![
            Candidate {
                job_id: "big",
                weight: 1,
                cache: &mut a[0],
            },
            Candidate {
                job_id: "small",
                weight: 1,
                cache: &mut b[0],
            },
        ];
        let mut fs = FairShare::default();
        let picked = fs.pick(FairSharingPolicy::Round, &mut jobs, 8);
        assert_eq!(picked, [1000, 2000, 1001, 2001, 1002, 2002, 1003, 1004]);
    }

    #[test]
    fn round_resumes_across_single_picks() {
        let mut cs = caches(&[(1000, 10), (2000, 10)]);
        let (a, b) = cs.split_at_mut(1);
        let mut jobs = vec![
            Candidate {
                job_id: "a",
                weight: 1,
                cache: &mut a[0],
            },
            Candidate {
                job_id: "b",
                weight: 1,
                cache: &mut b[0],
            },
        ];
        let mut fs = FairShare::default();
        let picks: Vec<i64> = (0..4)
            .flat_map(|_| fs.pick(FairSharingPolicy::Round, &mut jobs, 1))
            .collect();
        assert_eq!(picks, [1000, 2000, 1001, 2001]);
    }

    #[test]
    fn weighted_shares_by_priority_without_starving() {
        let mut cs = caches(&[(1000, 1000), (2000, 1000)]);
        let (a, b) = cs.split_at_mut(1);
        let mut jobs = vec![
            Candidate {
                job_id: "heavy",
                weight: 3,
                cache: &mut a[0],
            },
            Candidate {
                job_id: "light",
                weight: 1,
                cache: &mut b[0],
            },
        ];
        let mut fs = FairShare::default();
        let picked = fs.pick(FairSharingPolicy::Weighted, &mut jobs, 400);
        let light = picked.iter().filter(|&&id| id >= 2000).count();
        assert_eq!(light, 100);
        // Interleaved: the light job gets a slot in every window of four.
        for w in picked.chunks(4) {
            assert_eq!(w.iter().filter(|&&id| id >= 2000).count(), 1, "{w:?}");
        }
    }
}
