//! Embedded migrations, one folder per backend with the same numbers and names.
//!
//! Contract: [`run`] applies every migration not yet applied, each in its own transaction, recording version,
//! name and checksum in `schema_migrations`; a recorded migration whose text changed since is an error (edits go
//! into a new migration). On PostgreSQL an advisory lock makes concurrent starts of several instances wait for
//! one another; on SQLite `begin immediate` does the same.

use sqlx::{AnyConnection, Row as _};

use super::{Backend, Store, StoreError, StoreResult};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! migration {
    ($version:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $file,
            sqlite: include_str!(concat!("../../migrations/sqlite/", $file, ".sql")),
            postgres: include_str!(concat!("../../migrations/postgres/", $file, ".sql")),
        }
    };
}

pub static MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_foundation"),
    migration!(2, "0002_notifications"),
    migration!(3, "0003_complaints"),
    migration!(4, "0004_violations"),
    migration!(5, "0005_refund_safety"),
    migration!(6, "0006_retention_and_certificate_alerts"),
    migration!(7, "0007_token_scopes"),
    migration!(8, "0008_secrets_and_destinations"),
    migration!(9, "0009_console"),
    migration!(11, "0011_console_merchants"),
    migration!(16, "0016_console_dashboard"),
];

/// Arbitrary, fixed: the advisory lock id wxrisk instances take while migrating.
const PG_MIGRATION_LOCK: i64 = 0x7778_7269_736b;

impl Migration {
    fn sql(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }

    fn checksum(&self, backend: Backend) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.sql(backend).as_bytes());
        hex::encode(digest.as_ref())
    }
}

const CREATE_TABLE: &str = "create table if not exists schema_migrations (
    version bigint primary key,
    name text not null,
    checksum text not null,
    applied_at bigint not null
)";

/// Apply pending migrations. Returns the versions applied now.
pub async fn run(store: &Store, now_ms: i64) -> StoreResult<Vec<i64>> {
    run_through(store, i64::MAX, now_ms).await
}

/// Apply pending migrations up to and including version `last` (tests of a migration's data changes start from
/// the schema before it).
pub async fn run_through(store: &Store, last: i64, now_ms: i64) -> StoreResult<Vec<i64>> {
    let backend = store.backend();
    let mut conn = store.conn().await?;
    if backend == Backend::Postgres {
        sqlx::query("select pg_advisory_lock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    let result = apply_pending(&mut conn, backend, last, now_ms).await;
    if backend == Backend::Postgres {
        // Unlock even after a failure; the connection returns to the pool.
        let _ = sqlx::query("select pg_advisory_unlock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await;
    }
    result
}

async fn apply_pending(conn: &mut AnyConnection, backend: Backend, last: i64, now_ms: i64) -> StoreResult<Vec<i64>> {
    sqlx::query(CREATE_TABLE).execute(&mut *conn).await?;
    let mut applied_now = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version <= last) {
        let mut tx = match backend {
            Backend::Sqlite => sqlx::Connection::begin_with(&mut *conn, "begin immediate").await?,
            Backend::Postgres => sqlx::Connection::begin(&mut *conn).await?,
        };
        let recorded = sqlx::query("select checksum from schema_migrations where version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = recorded {
            let checksum: String = row.try_get("checksum")?;
            if checksum != migration.checksum(backend) {
                return Err(StoreError::Migration(format!(
                    "migration {migration:?} was changed after it was applied; put changes in a new migration"
                )));
            }
            tx.commit().await?;
            continue;
        }
        sqlx::raw_sql(migration.sql(backend))
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Migration(format!("{migration:?}: {e}")))?;
        sqlx::query("insert into schema_migrations (version, name, checksum, applied_at) values ($1, $2, $3, $4)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(migration.checksum(backend))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        applied_now.push(migration.version);
    }
    Ok(applied_now)
}

/// Versions compiled in but not applied (empty when the schema is current).
pub async fn pending(store: &Store) -> StoreResult<Vec<i64>> {
    let mut conn = store.conn().await?;
    let exists = match store.backend() {
        Backend::Sqlite => {
            sqlx::query("select 1 from sqlite_master where type = 'table' and name = 'schema_migrations'")
                .fetch_optional(&mut *conn)
                .await?
        }
        Backend::Postgres => {
            sqlx::query("select 1 from information_schema.tables where table_name = 'schema_migrations' and table_schema = current_schema()")
                .fetch_optional(&mut *conn)
                .await?
        }
    };
    if exists.is_none() {
        return Ok(MIGRATIONS.iter().map(|m| m.version).collect());
    }
    let rows = sqlx::query("select version from schema_migrations").fetch_all(&mut *conn).await?;
    let applied: Vec<i64> = rows.iter().map(|r| r.try_get::<i64, _>("version")).collect::<Result<_, _>>()?;
    Ok(MIGRATIONS.iter().map(|m| m.version).filter(|v| !applied.contains(v)).collect())
}
