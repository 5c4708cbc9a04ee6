//! The only place with SQL. One [`Store`] over SQLite or PostgreSQL, chosen by the URL's scheme.
//!
//! Contract: queries are portable lower-case SQL with `$n` placeholders, run through sqlx's `Any` driver; where
//! the two databases must differ (DDL, `for update skip locked`, locking for migrations) the branch is here and
//! nowhere else. Times are Unix milliseconds, booleans 0/1 integers, JSON text. Write transactions on SQLite
//! start with `begin immediate`, so a transaction that reads before it writes never fails with SQLITE_BUSY
//! half-way; PostgreSQL uses its default read-committed transactions.

pub mod audit;
pub mod certificate_alerts;
pub mod channels;
pub mod complaints;
pub mod conditions;
pub mod console;
pub mod dashboard;
pub mod deliveries;
pub mod idempotency;
pub mod inbound;
pub mod jobs;
pub mod merchants;
pub mod migrate;
pub mod oa_tokens;
pub mod providers;
pub mod refunds;
pub mod retention;
pub mod secrets;
pub mod templates;
pub mod tokens;
pub mod users;
pub mod violations;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions as _, Connection as _, Row as _};

use crate::config::DatabaseConfig;

pub type Tx = sqlx::Transaction<'static, Any>;

/// A query being built, for helpers that bind a shared list of columns.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, Any, <Any as sqlx::Database>::Arguments>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Self> {
        match url.split(':').next() {
            Some("sqlite") => Some(Backend::Sqlite),
            Some("postgres" | "postgresql") => Some(Backend::Postgres),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A unique constraint refused the write; `constraint` names it as the database reported it.
    #[error("a record with the same {constraint} exists")]
    Conflict { constraint: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("migration: {0}")]
    Migration(String),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("stored data is not as expected: {0}")]
    Corrupt(String),
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
}

impl StoreError {
    /// Turn a unique violation into [`StoreError::Conflict`]; other errors pass through.
    pub fn from_write(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            let constraint = db.constraint().map(str::to_owned).unwrap_or_else(|| db.message().to_owned());
            return StoreError::Conflict { constraint };
        }
        StoreError::Database(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A pool of connections to one database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connect (creating the SQLite file, mode 0600, and its directory, mode 0700, when missing). Does not migrate.
    pub async fn connect(url: &str, config: &DatabaseConfig) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let options: AnyConnectOptions = url.parse()?;
        let options = options.disable_statement_logging();
        if backend == Backend::Sqlite {
            prepare_sqlite_file(url)?;
            // WAL is a property of the file; setting it takes an exclusive lock, so do it once, alone.
            let mut conn = AnyConnection::connect_with(&options).await?;
            sqlx::query("pragma journal_mode = wal").execute(&mut conn).await?;
            conn.close().await?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // NORMAL is durable across application crashes in WAL mode; only an OS crash can lose
                        // the last transactions, and WeChat redelivers what we did not acknowledge.
                        sqlx::query("pragma synchronous = normal").execute(&mut *conn).await?;
                        sqlx::query("pragma busy_timeout = 10000").execute(&mut *conn).await?;
                        sqlx::query("pragma foreign_keys = on").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for reads and single-statement writes.
    pub async fn conn(&self) -> StoreResult<sqlx::pool::PoolConnection<Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// A write transaction.
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("begin immediate").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// The database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// `for update skip locked` where the database has it (PostgreSQL); SQLite's single writer makes the claim
    /// atomic without it.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " for update skip locked",
        }
    }
}

/// The database file is private: created 0600 (in a directory created 0700) before SQLite opens it, so its
/// `-wal` and `-shm` files, which SQLite gives the database file's mode, are private too; an existing one is
/// tightened (`private_files`).
fn prepare_sqlite_file(url: &str) -> StoreResult<()> {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return Ok(());
    }
    let path = std::path::Path::new(path);
    if query.contains("mode=rwc") || path.exists() {
        crate::private_files::prepare_database_file(path)
            .map_err(|e| StoreError::Migration(format!("cannot prepare the database file {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Read a column, naming it when the stored value is not what the code expects.
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(name).map_err(StoreError::Database)
}

/// A 0/1 integer column as a bool.
pub(crate) fn flag(row: &AnyRow, name: &str) -> StoreResult<bool> {
    Ok(col::<i64>(row, name)? != 0)
}

pub(crate) fn to_flag(value: bool) -> i64 {
    i64::from(value)
}

/// Keyset pagination: at most `limit` items after `cursor`, and the cursor of the next page.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub after_id: i64,
    pub limit: i64,
}

impl Page {
    pub const MAX_LIMIT: i64 = 200;
    pub const DEFAULT_LIMIT: i64 = 50;

    /// Split the `limit + 1` rows a query fetched into the page and the next cursor.
    pub fn finish<T>(&self, mut items: Vec<T>, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
        let limit = usize::try_from(self.limit).unwrap_or(0);
        if items.len() > limit {
            items.truncate(limit);
            let next = items.last().map(id);
            (items, next)
        } else {
            (items, None)
        }
    }
}
