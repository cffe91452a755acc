//! Meridian's test harness: a throwaway PostgreSQL cluster (or `DATABASE_URL`), test
//! sites in-process or as real processes, and a seeded corpus generator with known
//! finding counts. Used by the integration tests in `tests/tests/` and by the benches.

pub mod bitmap;
pub mod corpus;
pub mod documents;
pub mod hostile;
pub mod mesh;
pub mod pg;
pub mod process;
pub mod site;
pub mod store;
pub mod values;

/// The two storage backends every storage behaviour is tested on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test: a new SQLite file in `dir`, or a new
/// database on the shared PostgreSQL cluster.
pub async fn database_url(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("site.db").display()),
        Backend::Postgres => pg::fresh_database().await,
    }
}

/// Installs the process-wide rustls provider once (what `main` does in the binaries).
pub fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    meridian_service::telemetry::init(meridian_service::telemetry::LogFormat::Text, "warn");
}

/// Generates `sqlite::name` and `postgres::name` tests calling `name(Backend)` for
/// every listed async test body, so that each behaviour runs on both stores. With
/// `open: f;` first, they call `name(f(Backend).await)`: the test file's own `f` opens
/// what its bodies take.
#[macro_export]
macro_rules! on_both {
    (open: $open:ident; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::$open($crate::Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::$open($crate::Backend::Postgres).await).await
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}
