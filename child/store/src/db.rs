//! Where statements run, in either dialect: the pools ([`Db`]), a pooled connection
//! ([`Conn`]) or an open transaction ([`Tx`]), each lent out as a [`Link`] that runs
//! one statement with its [`Arg`]s. The store's logic is written once against these;
//! only the binding of lists differs (PostgreSQL arrays, SQLite JSON arrays).

use sqlx::error::BoxDynError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{
    Arguments, FromRow, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool,
    Transaction,
};

use crate::{StoreError, StoreResult};

/// A row type both drivers can decode.
pub(crate) trait Decoded:
    for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin + 'static
{
}
impl<T> Decoded for T where
    T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin + 'static
{
}

/// One statement parameter.
pub(crate) enum Arg {
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    OptText(Option<String>),
    /// A list: an array on PostgreSQL, a JSON array on SQLite.
    List(List),
    /// Lists of one length matched by position: one array parameter each on
    /// PostgreSQL, one JSON array of rows (`[[a1, b1], [a2, b2], …]`) on SQLite, read
    /// with `json_each` and `value ->> k`. (Two JSON arrays joined on their index
    /// would be a nested scan: 0.1 s for 500 elements.)
    Rows(Vec<List>),
}

pub(crate) enum List {
    Ints(Vec<i64>),
    OptInts(Vec<Option<i64>>),
    Texts(Vec<String>),
    OptTexts(Vec<Option<String>>),
    Reals(Vec<f64>),
}

impl List {
    fn json(&self) -> String {
        match self {
            List::Ints(v) => serde_json::to_string(v),
            List::OptInts(v) => serde_json::to_string(v),
            List::Texts(v) => serde_json::to_string(v),
            List::OptTexts(v) => serde_json::to_string(v),
            List::Reals(v) => serde_json::to_string(v),
        }
        .unwrap_or_default()
    }

    fn len(&self) -> usize {
        match self {
            List::Ints(v) => v.len(),
            List::OptInts(v) => v.len(),
            List::Texts(v) => v.len(),
            List::OptTexts(v) => v.len(),
            List::Reals(v) => v.len(),
        }
    }

    fn value(&self, i: usize) -> serde_json::Value {
        use serde_json::Value;
        match self {
            List::Ints(v) => v.get(i).map_or(Value::Null, |&n| n.into()),
            List::OptInts(v) => v.get(i).copied().flatten().map_or(Value::Null, Value::from),
            List::Texts(v) => v.get(i).map_or(Value::Null, |t| t.as_str().into()),
            List::OptTexts(v) => v
                .get(i)
                .and_then(Option::as_deref)
                .map_or(Value::Null, Value::from),
            List::Reals(v) => v.get(i).map_or(Value::Null, |&n| n.into()),
        }
    }
}

/// `lists` as one JSON array of rows, the i-th row holding each list's i-th element.
fn json_rows(lists: &[List]) -> String {
    let n = lists.first().map_or(0, List::len);
    let rows: Vec<serde_json::Value> = (0..n)
        .map(|i| lists.iter().map(|l| l.value(i)).collect())
        .collect();
    serde_json::to_string(&rows).unwrap_or_default()
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Bool(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::Real(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_owned())
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(v.clone())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::OptText(v.map(str::to_owned))
    }
}
impl From<List> for Arg {
    fn from(v: List) -> Arg {
        Arg::List(v)
    }
}

/// The parameters of one statement, `$1` first.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::db::Arg::from($a)),*] };
}
pub(crate) use args;

/// Binds the scalars, which both drivers take alike; returns lists for the caller.
fn add_scalar<A>(to: &mut A, arg: Arg) -> Result<Option<Vec<List>>, BoxDynError>
where
    A: Arguments,
    for<'t> i64: sqlx::Encode<'t, A::Database> + sqlx::Type<A::Database>,
    for<'t> f64: sqlx::Encode<'t, A::Database> + sqlx::Type<A::Database>,
    for<'t> bool: sqlx::Encode<'t, A::Database> + sqlx::Type<A::Database>,
    for<'t> String: sqlx::Encode<'t, A::Database> + sqlx::Type<A::Database>,
    for<'t> Option<String>: sqlx::Encode<'t, A::Database> + sqlx::Type<A::Database>,
{
    match arg {
        Arg::Int(v) => to.add(v)?,
        Arg::Real(v) => to.add(v)?,
        Arg::Bool(v) => to.add(v)?,
        Arg::Text(v) => to.add(v)?,
        Arg::OptText(v) => to.add(v)?,
        Arg::List(l) => return Ok(Some(vec![l])),
        Arg::Rows(ls) => return Ok(Some(ls)),
    }
    Ok(None)
}

fn pg_arguments(args: Vec<Arg>) -> Result<PgArguments, BoxDynError> {
    let mut to = PgArguments::default();
    for arg in args {
        for list in add_scalar(&mut to, arg)?.unwrap_or_default() {
            match list {
                List::Ints(v) => to.add(v)?,
                List::OptInts(v) => to.add(v)?,
                List::Texts(v) => to.add(v)?,
                List::OptTexts(v) => to.add(v)?,
                List::Reals(v) => to.add(v)?,
            }
        }
    }
    Ok(to)
}

fn sqlite_arguments(args: Vec<Arg>) -> Result<SqliteArguments, BoxDynError> {
    let mut to = SqliteArguments::default();
    for arg in args {
        let rows = matches!(arg, Arg::Rows(_));
        match add_scalar(&mut to, arg)? {
            Some(lists) if rows => to.add(json_rows(&lists))?,
            Some(lists) => {
                for list in lists {
                    to.add(list.json())?
                }
            }
            None => {}
        }
    }
    Ok(to)
}

/// A parameter the driver could not encode is a bug here, not the database's state.
fn bound<A>(args: Result<A, BoxDynError>) -> StoreResult<A> {
    args.map_err(|e| StoreError::Internal(format!("statement parameters: {e}")))
}

/// One connection of either dialect, lent for one statement.
pub(crate) enum Link<'c> {
    Pg(&'c mut PgConnection),
    Lite(&'c mut SqliteConnection),
}

impl Link<'_> {
    /// Every row.
    pub async fn all<T: Decoded>(self, sql: &'static str, args: Vec<Arg>) -> StoreResult<Vec<T>> {
        Ok(match self {
            Link::Pg(c) => {
                sqlx::query_as_with(sql, bound(pg_arguments(args))?)
                    .fetch_all(c)
                    .await?
            }
            Link::Lite(c) => {
                sqlx::query_as_with(sql, bound(sqlite_arguments(args))?)
                    .fetch_all(c)
                    .await?
            }
        })
    }

    /// The first row, if any (the statements asked this return at most one).
    pub async fn optional<T: Decoded>(
        self,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> StoreResult<Option<T>> {
        Ok(self.all(sql, args).await?.into_iter().next())
    }

    /// The one row.
    pub async fn one<T: Decoded>(self, sql: &'static str, args: Vec<Arg>) -> StoreResult<T> {
        self.optional(sql, args)
            .await?
            .ok_or_else(|| StoreError::Internal("statement returned no row".into()))
    }

    /// The first column of every row.
    pub async fn column<T>(self, sql: &'static str, args: Vec<Arg>) -> StoreResult<Vec<T>>
    where
        (T,): Decoded,
    {
        Ok(self
            .all::<(T,)>(sql, args)
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect())
    }

    /// Runs a statement for its effect; returns the rows it changed.
    pub async fn execute(self, sql: &'static str, args: Vec<Arg>) -> StoreResult<u64> {
        Ok(match self {
            Link::Pg(c) => sqlx::query_with(sql, bound(pg_arguments(args))?)
                .execute(c)
                .await?
                .rows_affected(),
            Link::Lite(c) => sqlx::query_with(sql, bound(sqlite_arguments(args))?)
                .execute(c)
                .await?
                .rows_affected(),
        })
    }
}

/// The pools: PostgreSQL reads and writes through one, SQLite writes through a
/// single connection and reads through a pool of its own.
#[derive(Clone)]
pub(crate) enum Db {
    Pg(PgPool),
    Lite { write: SqlitePool, read: SqlitePool },
}

/// A pooled connection.
pub(crate) enum Conn {
    Pg(PoolConnection<Postgres>),
    Lite(PoolConnection<Sqlite>),
}

impl Conn {
    pub fn link(&mut self) -> Link<'_> {
        match self {
            Conn::Pg(c) => Link::Pg(c),
            Conn::Lite(c) => Link::Lite(c),
        }
    }
}

/// An open transaction; dropped without `commit`, it rolls back.
pub(crate) enum Tx {
    Pg(Transaction<'static, Postgres>),
    Lite(Transaction<'static, Sqlite>),
}

impl Tx {
    pub fn link(&mut self) -> Link<'_> {
        match self {
            Tx::Pg(t) => Link::Pg(t),
            Tx::Lite(t) => Link::Lite(t),
        }
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Pg(t) => t.commit().await?,
            Tx::Lite(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Db {
    /// A connection for reads.
    pub async fn read(&self) -> StoreResult<Conn> {
        Ok(match self {
            Db::Pg(p) => Conn::Pg(p.acquire().await?),
            Db::Lite { read, .. } => Conn::Lite(read.acquire().await?),
        })
    }

    /// A connection for a write that is one statement.
    pub async fn write(&self) -> StoreResult<Conn> {
        Ok(match self {
            Db::Pg(p) => Conn::Pg(p.acquire().await?),
            Db::Lite { write, .. } => Conn::Lite(write.acquire().await?),
        })
    }

    /// A transaction on the write side.
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Pg(p) => Tx::Pg(p.begin().await?),
            Db::Lite { write, .. } => Tx::Lite(write.begin().await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Db::Pg(p) => p.close().await,
            Db::Lite { write, read } => {
                read.close().await;
                write.close().await;
            }
        }
    }
}
