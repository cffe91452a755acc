//! Filtered, sorted, keyset-paged job lists (`GET /api/v1/jobs`, bulk cancel): one
//! statement built from the filter, each sort served by an index of migration 0002
//! so the first page of 100,000 jobs reads a page of index entries, not the table.

use sqlx::Row;

use super::jobs::job_row;
use super::{JobRow, Result, Store};

/// Overall states after which a job never changes again.
pub const FINAL_STATES: [&str; 4] = ["COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELLED"];

/// Which jobs a list or a bulk cancel selects; every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Any of these overall states; every state when empty.
    pub states: Vec<String>,
    /// Jobs with a part at this site.
    pub site: Option<String>,
    /// A glob on the name: `*` any run of characters, `?` one, case-sensitive.
    pub name: Option<String>,
    /// Created at or after, epoch milliseconds.
    pub created_after: Option<i64>,
    /// Created strictly before, epoch milliseconds.
    pub created_before: Option<i64>,
    /// Only jobs a bulk cancel can still act on: not in a final state, and no
    /// cancel requested yet (a job being cancelled is not selected again, so each
    /// call of a long bulk cancel moves on to the next jobs).
    pub cancellable: bool,
}

/// The order of a list; ties are broken by job id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobSort {
    /// Newest first (the default).
    #[default]
    CreatedDesc,
    CreatedAsc,
    NameAsc,
}

impl JobSort {
    pub fn parse(s: &str) -> Option<JobSort> {
        match s {
            "-created_at" => Some(JobSort::CreatedDesc),
            "created_at" => Some(JobSort::CreatedAsc),
            "name" => Some(JobSort::NameAsc),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobSort::CreatedDesc => "-created_at",
            JobSort::CreatedAsc => "created_at",
            JobSort::NameAsc => "name",
        }
    }
}

/// Where the next page starts: the sort key and job id of the last row served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKey {
    Created(i64, String),
    Name(String, String),
}

/// `name` as a `LIKE` pattern with `\` as the escape character.
pub fn like_pattern(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 2);
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A statement under construction: SQL text and its parameters in order.
struct Sql {
    text: String,
    args: Vec<Arg>,
}

enum Arg {
    Int(i64),
    Text(String),
}

impl Sql {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        // Every value is a bind parameter; the text holds only fixed fragments and
        // `$n` placeholders (the state list of `cancellable` is a constant).
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.text.clone()));
        for a in &self.args {
            q = match a {
                Arg::Int(i) => q.bind(*i),
                Arg::Text(t) => q.bind(t.clone()),
            };
        }
        q
    }
}

fn where_clause(sql: &mut Sql, f: &JobFilter, after: Option<&JobKey>, sort: JobSort) {
    let mut conds: Vec<String> = Vec::new();
    if !f.states.is_empty() {
        let list: Vec<String> = f
            .states
            .iter()
            .map(|s| sql.arg(Arg::Text(s.clone())))
            .collect();
        conds.push(format!("state IN ({})", list.join(", ")));
    }
    if f.cancellable {
        conds.push(format!(
            "state NOT IN ({}) AND cancel_requested = 0",
            FINAL_STATES.map(|s| format!("'{s}'")).join(", ")
        ));
    }
    if let Some(site) = &f.site {
        let p = sql.arg(Arg::Text(site.clone()));
        conds.push(format!(
            "EXISTS (SELECT 1 FROM site_jobs s WHERE s.site = {p} AND s.job_id = jobs.job_id)"
        ));
    }
    if let Some(name) = &f.name {
        let p = sql.arg(Arg::Text(like_pattern(name)));
        conds.push(format!("name LIKE {p} ESCAPE '\\'"));
    }
    if let Some(t) = f.created_after {
        let p = sql.arg(Arg::Int(t));
        conds.push(format!("created_at >= {p}"));
    }
    if let Some(t) = f.created_before {
        let p = sql.arg(Arg::Int(t));
        conds.push(format!("created_at < {p}"));
    }
    match (after, sort) {
        (Some(JobKey::Created(t, id)), JobSort::CreatedDesc | JobSort::CreatedAsc) => {
            let (pt, pi) = (sql.arg(Arg::Int(*t)), sql.arg(Arg::Text(id.clone())));
            let op = if sort == JobSort::CreatedDesc {
                "<"
            } else {
                ">"
            };
            conds.push(format!(
                "(created_at {op} {pt} OR (created_at = {pt} AND job_id {op} {pi}))"
            ));
        }
        (Some(JobKey::Name(n, id)), JobSort::NameAsc) => {
            let (pn, pi) = (
                sql.arg(Arg::Text(n.clone())),
                sql.arg(Arg::Text(id.clone())),
            );
            conds.push(format!("(name > {pn} OR (name = {pn} AND job_id > {pi}))"));
        }
        // A key of another sort is refused by the API before it gets here.
        _ => {}
    }
    if !conds.is_empty() {
        sql.text.push_str(" WHERE ");
        sql.text.push_str(&conds.join(" AND "));
    }
}

fn list_sql(f: &JobFilter, sort: JobSort, after: Option<&JobKey>, limit: i64) -> Sql {
    let mut sql = Sql {
        text: "SELECT job_id, name, request, state, cancel_requested, created_at, updated_at, trace_id FROM jobs"
            .into(),
        args: Vec::new(),
    };
    where_clause(&mut sql, f, after, sort);
    sql.text.push_str(match sort {
        JobSort::CreatedDesc => " ORDER BY created_at DESC, job_id DESC",
        JobSort::CreatedAsc => " ORDER BY created_at, job_id",
        JobSort::NameAsc => " ORDER BY name, job_id",
    });
    let p = sql.arg(Arg::Int(limit));
    sql.text.push_str(&format!(" LIMIT {p}"));
    sql
}

impl Store {
    /// One page of the jobs `f` selects in `sort` order, after `after`.
    pub async fn find_jobs(
        &self,
        f: &JobFilter,
        sort: JobSort,
        after: Option<&JobKey>,
        limit: i64,
    ) -> Result<Vec<JobRow>> {
        let sql = list_sql(f, sort, after, limit);
        let rows = sql.query().fetch_all(&self.pool).await?;
        rows.iter().map(job_row).collect()
    }

    /// How many jobs `f` selects.
    pub async fn count_jobs(&self, f: &JobFilter) -> Result<i64> {
        let mut sql = Sql {
            text: "SELECT COUNT(*) AS n FROM jobs".into(),
            args: Vec::new(),
        };
        where_clause(&mut sql, f, None, JobSort::default());
        let row = sql.query().fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// The database's plan for [`Store::find_jobs`], one line per plan row: what the
    /// index tests read to show a page is served from an index.
    pub async fn explain_find_jobs(
        &self,
        f: &JobFilter,
        sort: JobSort,
        after: Option<&JobKey>,
        limit: i64,
    ) -> Result<Vec<String>> {
        let mut sql = list_sql(f, sort, after, limit);
        let sqlite = self.sqlite;
        sql.text = if sqlite {
            format!("EXPLAIN QUERY PLAN {}", sql.text)
        } else {
            format!("EXPLAIN {}", sql.text)
        };
        let rows = sql.query().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(if sqlite {
                    r.try_get::<String, _>("detail")?
                } else {
                    r.try_get::<String, _>(0)?
                })
            })
            .collect()
    }

    /// Refreshes the planner's statistics (after a bulk load, as the tests do).
    pub async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }
}
