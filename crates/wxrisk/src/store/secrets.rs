//! The columns that hold sealed secrets, writing a sealed value to its row, the one-time move of old values to
//! row binding, and re-sealing under a new master key.
//!
//! Contract: every sealed column is listed in [`SEALED_COLUMNS`] (or is the official-account token cache, which is
//! dropped instead of re-sealed). A value is sealed for its [`SecretSlot`] — column *and* row — so it can only be
//! sealed once its row exists: a new row is inserted without the secret (NULL, or `''` in a NOT NULL column), the
//! caller seals for the new id, and [`put`] fills it in, in the same transaction, so no committed row ever holds
//! an unbound or foreign value. Values arrive here sealed; only the re-sealing below sees plaintext.
//!
//! Row binding replaced the column-only `v1` format (see `crate::secrets`). [`bind_to_rows`] runs at every start:
//! the first time, in one transaction, it re-seals every `v1` value for its row and records that the move
//! happened (`secrets_binding`); afterwards it only reports `v1` values, which no longer open. It also records the
//! move without re-sealing anything when it finds row-bound values already there but no record (the record was
//! deleted): `v1` values beside `v2` ones did not come from the upgrade. `wxrisk secrets rotate`
//! ([`reseal_all`]) follows the same rule.

use sqlx::AnyConnection;

use super::{Backend, Store, StoreError, StoreResult, col};
use crate::secrets::{Keyring, SealedFormat, SecretSlot, SecretsError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    purpose: &'static str,
}

impl SealedColumn {
    /// `table.column`: the column part of a value's associated data (all of it in the old `v1` format).
    pub fn purpose(&self) -> &'static str {
        self.purpose
    }

    /// The slot of this column in row `id`.
    pub fn row(&self, id: i64) -> SecretSlot {
        SecretSlot::new(self.purpose, id)
    }

    /// The slot of this column in the row keyed `key` (for a table without an integer id).
    pub fn keyed(&self, key: &str) -> SecretSlot {
        SecretSlot::new(self.purpose, key)
    }
}

macro_rules! sealed_column {
    ($table:literal, $column:literal) => {
        SealedColumn { table: $table, column: $column, purpose: concat!($table, ".", $column) }
    };
}

pub const PROVIDER_PRIVATE_KEY: SealedColumn = sealed_column!("providers", "merchant_private_key_sealed");
pub const PROVIDER_APIV3_KEY: SealedColumn = sealed_column!("providers", "apiv3_key_sealed");
pub const CHANNEL_SECRETS: SealedColumn = sealed_column!("channels", "secrets_sealed");
/// The complainant's phone number (WeChat sends it encrypted for the provider; we keep it sealed for ours).
pub const PAYER_PHONE: SealedColumn = sealed_column!("complaints", "payer_phone_sealed");
/// A cache, not a record: keyed by appid; rotation and the move to row binding drop these rather than re-sealing
/// them (they are fetched again).
pub const OA_ACCESS_TOKEN: SealedColumn = sealed_column!("oa_tokens", "access_token_sealed");

/// The columns of records, all in tables with an integer `id`.
pub const SEALED_COLUMNS: &[SealedColumn] = &[PROVIDER_PRIVATE_KEY, PROVIDER_APIV3_KEY, CHANNEL_SECRETS, PAYER_PHONE];

/// Arbitrary, fixed: the transaction-scoped advisory lock instances take while moving secrets to row binding.
const PG_BINDING_LOCK: i64 = 0x7778_7365_616c;

/// Write a value sealed for `column.row(id)` (or NULL) into `column` of row `id` (the row must exist: see the
/// module docs).
pub async fn put(conn: &mut AnyConnection, column: SealedColumn, id: i64, sealed: Option<&str>) -> StoreResult<()> {
    // Table and column names come from the constants above, never from input.
    let sql = format!("update {} set {} = $1 where id = $2", column.table, column.column);
    let done = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(sealed).bind(id).execute(&mut *conn).await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(column.table));
    }
    Ok(())
}

/// What [`bind_to_rows`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BindingReport {
    /// `v1` values re-sealed for their rows now.
    pub resealed: u64,
    /// `v1` values left alone because the move happened before: they do not open (`table.column of row N`).
    pub refused: Vec<String>,
}

/// Move every `v1` value to row binding the first time; report stray `v1` values after that. One transaction;
/// concurrent starts of several instances wait for one another.
pub async fn bind_to_rows(store: &Store, keyring: &Keyring, now: i64) -> StoreResult<BindingReport> {
    let mut tx = store.begin().await?;
    if store.backend() == Backend::Postgres {
        sqlx::query("select pg_advisory_xact_lock($1)").bind(PG_BINDING_LOCK).execute(&mut *tx).await?;
    }
    let accept_unbound = unbound_values_accepted(&mut tx).await?;
    let mut report = BindingReport::default();
    for column in SEALED_COLUMNS {
        for (id, value) in values_of(&mut tx, *column, Some(SealedFormat::Unbound)).await? {
            if !accept_unbound {
                report.refused.push(column.row(id).to_string());
                continue;
            }
            let plain = keyring.open_unbound_v1(column.purpose(), &value)?;
            let resealed = keyring.seal(&column.row(id), secrecy::ExposeSecret::expose_secret(&plain))?;
            put(&mut tx, *column, id, Some(&resealed)).await?;
            report.resealed += 1;
        }
    }
    if accept_unbound {
        drop_cached_tokens_unless(&mut tx, SealedFormat::RowBound.prefix()).await?;
        record_binding(&mut tx, now).await?;
        if report.resealed > 0 {
            let detail = serde_json::json!({"resealed": report.resealed, "format": "v2"});
            super::audit::record(&mut tx, now, "system", "secrets.bind_to_rows", ("secrets", "v2"), &detail).await?;
        }
    }
    tx.commit().await?;
    Ok(report)
}

/// Whether `v1` values may still be moved to row binding: only while the move has not happened and no row-bound
/// value exists. Records the move when it finds row-bound values without a record.
async fn unbound_values_accepted(conn: &mut AnyConnection) -> StoreResult<bool> {
    let recorded =
        sqlx::query("select row_bound_since from secrets_binding where id = 1").fetch_optional(&mut *conn).await?;
    if recorded.is_some() {
        return Ok(false);
    }
    for column in SEALED_COLUMNS.iter().chain([&OA_ACCESS_TOKEN]) {
        let sql = format!("select 1 as found from {} where {} like $1 limit 1", column.table, column.column);
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(format!("{}%", SealedFormat::RowBound.prefix()))
            .fetch_optional(&mut *conn)
            .await?;
        if found.is_some() {
            tracing::warn!(
                "row-bound secrets exist but the record of the move to row binding is missing; it is written again \
                 and old-format (v1) values are not re-sealed"
            );
            return Ok(false);
        }
    }
    Ok(true)
}

async fn record_binding(conn: &mut AnyConnection, now: i64) -> StoreResult<()> {
    sqlx::query("insert into secrets_binding (id, row_bound_since) values (1, $1) on conflict (id) do nothing")
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `(id, sealed value)` of every row of `column` holding a value (of `format`, when given).
async fn values_of(
    conn: &mut AnyConnection,
    column: SealedColumn,
    format: Option<SealedFormat>,
) -> StoreResult<Vec<(i64, String)>> {
    let sql = format!(
        "select id, {c} as value from {t} where {c} is not null and {c} like $1 order by id",
        c = column.column,
        t = column.table
    );
    let pattern = format.map_or_else(|| "%".to_owned(), |f| format!("{}%", f.prefix()));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(pattern).fetch_all(&mut *conn).await?;
    rows.iter().map(|row| Ok((col(row, "id")?, col(row, "value")?))).collect()
}

async fn drop_cached_tokens_unless(conn: &mut AnyConnection, prefix: &str) -> StoreResult<()> {
    sqlx::query("delete from oa_tokens where access_token_sealed not like $1")
        .bind(format!("{prefix}%"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Re-seal every value not row-bound under `keyring`'s current key, and drop cached tokens that are not. `v1`
/// values are moved to row binding if the move has not happened yet (see the module docs), and otherwise stop the
/// rotation with an error naming the row. Run inside one transaction: all or nothing.
/// Returns how many values were re-sealed.
pub async fn reseal_all(conn: &mut AnyConnection, keyring: &Keyring, now: i64) -> StoreResult<u64> {
    let accept_unbound = unbound_values_accepted(conn).await?;
    let mut count = 0;
    for column in SEALED_COLUMNS {
        for (id, value) in values_of(conn, *column, None).await? {
            if keyring.is_current(&value) {
                continue;
            }
            let slot = column.row(id);
            let plain = match SealedFormat::of(&value) {
                Some(SealedFormat::Unbound) if accept_unbound => keyring.open_unbound_v1(column.purpose(), &value)?,
                Some(SealedFormat::Unbound) => return Err(SecretsError::Unbound { slot: slot.to_string() }.into()),
                _ => keyring.open(&slot, &value)?,
            };
            let resealed = keyring.seal(&slot, secrecy::ExposeSecret::expose_secret(&plain))?;
            put(conn, *column, id, Some(&resealed)).await?;
            count += 1;
        }
    }
    drop_cached_tokens_unless(conn, &keyring.current_prefix()).await?;
    record_binding(conn, now).await?;
    Ok(count)
}
