//! Deleting finished work older than a cutoff, one small batch at a time (what is deleted, what is kept and why
//! that is safe: `workflow::retention`).
//!
//! Contract: each function deletes at most `batch` rows of its kind in one short transaction of its own — on
//! SQLite the callbacks' writer waits for one batch at most, never for the whole purge — and says how many it
//! deleted; the caller loops until a batch comes back empty.

use sqlx::AnyConnection;

use super::{Store, StoreResult, col};

/// What one batch of [`purge_finished_jobs`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgedJobs {
    pub jobs: u64,
    pub attempts: u64,
    pub deliveries: u64,
}

/// Jobs that may go: succeeded before the cutoff; not a delivery that carries other deliveries still stored (it
/// goes after them, in a later batch); not a delivery carried in a digest whose carrier has not succeeded (a dead
/// carrier may be retried by hand, and rebuilds its digest from its members). Queued, running and dead jobs are
/// never selected.
const ELIGIBLE_JOBS: &str = "select j.id from jobs j \
    where j.status = 'succeeded' and j.finished_at < $1 \
    and not exists (select 1 from deliveries c join deliveries m on m.digested_into = c.id where c.job_id = j.id) \
    and not exists (select 1 from deliveries m join deliveries c on c.id = m.digested_into \
                    join jobs cj on cj.id = c.job_id where m.job_id = j.id and cj.status <> 'succeeded') \
    order by j.finished_at, j.id limit $2";

/// `$1, $2, …, $n`.
fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `{sql_prefix} in (ids)`, each id a bound parameter.
async fn delete_by_ids(conn: &mut AnyConnection, sql_prefix: &str, ids: &[i64]) -> StoreResult<u64> {
    let sql = format!("{sql_prefix} in ({})", placeholders(ids.len()));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

/// Delete one batch of finished jobs, with their attempts and deliveries.
pub async fn purge_finished_jobs(store: &Store, cutoff: i64, batch: i64) -> StoreResult<PurgedJobs> {
    let mut tx = store.begin().await?;
    let rows = sqlx::query(ELIGIBLE_JOBS).bind(cutoff).bind(batch).fetch_all(&mut *tx).await?;
    let ids: Vec<i64> = rows.iter().map(|r| col(r, "id")).collect::<StoreResult<_>>()?;
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(PurgedJobs::default());
    }
    let deliveries = delete_by_ids(&mut tx, "delete from deliveries where job_id", &ids).await?;
    let attempts = delete_by_ids(&mut tx, "delete from job_attempts where job_id", &ids).await?;
    let jobs = delete_by_ids(&mut tx, "delete from jobs where status = 'succeeded' and id", &ids).await?;
    tx.commit().await?;
    Ok(PurgedJobs { jobs, attempts, deliveries })
}

/// Delete one batch of inbound notifications received before the cutoff.
pub async fn purge_inbound(store: &Store, cutoff: i64, batch: i64) -> StoreResult<u64> {
    let mut tx = store.begin().await?;
    let done = sqlx::query(
        "delete from inbound_notifications where id in \
         (select id from inbound_notifications where received_at < $1 order by received_at, id limit $2)",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_are_bound_parameters() {
        assert_eq!(placeholders(1), "$1");
        assert_eq!(placeholders(3), "$1, $2, $3");
    }
}
