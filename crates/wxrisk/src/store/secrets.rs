//! The columns that hold sealed secrets, and re-sealing them under a new master key.
//!
//! Contract: every sealed column is listed in [`SEALED_COLUMNS`]; a value's purpose (its AES-GCM associated data)
//! is `table.column`, so a sealed value is bound to the column it lives in. A new sealed column must be added
//! here, or `wxrisk secrets rotate` would leave it under the old key.

use sqlx::AnyConnection;

use super::{StoreResult, col};
use crate::secrets::Keyring;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    purpose: &'static str,
}

impl SealedColumn {
    /// The associated data sealed values of this column carry.
    pub fn purpose(&self) -> &'static str {
        self.purpose
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
/// A cache, not a record: rotation drops these rather than re-sealing them (they are fetched again).
pub const OA_ACCESS_TOKEN: SealedColumn = sealed_column!("oa_tokens", "access_token_sealed");

pub const SEALED_COLUMNS: &[SealedColumn] = &[PROVIDER_PRIVATE_KEY, PROVIDER_APIV3_KEY, CHANNEL_SECRETS, PAYER_PHONE];

/// Re-seal every value not under `keyring`'s current key, and drop cached tokens sealed under an older one. Run
/// inside one transaction: all or nothing.
/// Returns how many values were re-sealed.
pub async fn reseal_all(conn: &mut AnyConnection, keyring: &Keyring) -> StoreResult<u64> {
    let mut count = 0;
    for sealed in SEALED_COLUMNS {
        // Table and column names come from the constant list above, never from input.
        let select =
            format!("select id, {} as value from {} where {} is not null", sealed.column, sealed.table, sealed.column);
        let update = format!("update {} set {} = $1 where id = $2", sealed.table, sealed.column);
        let rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch_all(&mut *conn).await?;
        for row in rows {
            let id: i64 = col(&row, "id")?;
            let value: String = col(&row, "value")?;
            if keyring.is_current(&value) {
                continue;
            }
            let plain = keyring.open(sealed.purpose(), &value)?;
            let resealed = keyring.seal(sealed.purpose(), secrecy::ExposeSecret::expose_secret(&plain))?;
            sqlx::query(sqlx::AssertSqlSafe(update.clone())).bind(resealed).bind(id).execute(&mut *conn).await?;
            count += 1;
        }
    }
    let prefix = format!("v1.{}.%", keyring.current_id());
    sqlx::query("delete from oa_tokens where access_token_sealed not like $1").bind(prefix).execute(&mut *conn).await?;
    Ok(count)
}
