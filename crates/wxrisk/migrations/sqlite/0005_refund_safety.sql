-- Refund safety and the automation start (issue 10, points 1-4).
--
-- 1. Earlier versions marked a refund FAILED on a refusal alone, without asking WeChat Pay whether it existed. Such
--    a refund may have been paid: it is unknown again (it holds its order: see 2) until a query settles it.
update refunds set status = 'REQUESTED',
       last_error = coalesce(last_error, '') || ' [marked FAILED by an earlier version without asking WeChat Pay; being checked]'
 where status = 'FAILED';
insert into jobs (kind, dedupe_key, payload, provider_id, status, attempts, run_at, created_at, updated_at)
select 'refund.query', 'refund-verify:' || provider_id || ':' || out_refund_no,
       '{"provider_id":' || provider_id || ',"out_refund_no":"' || out_refund_no || '","round":1}',
       provider_id, 'queued', 0, updated_at, updated_at, updated_at
  from refunds
 where status = 'REQUESTED' and last_error like '%[marked FAILED by an earlier version%'
on conflict (dedupe_key) do nothing;

-- 2. An order has at most one refund that holds it: `holds_order = 1` rows that are not finally failed (`FAILED`:
--    WeChat Pay confirmed no such refund; `CLOSED`). A partial unique index enforces it on both backends, so two
--    workers deciding at once cannot both refund. Only an operator's explicit "additional" refund has
--    `holds_order = 0`. Rows that break the rule already (made before this index) keep the oldest as the holder.
alter table refunds add column holds_order integer not null default 1;
update refunds set holds_order = 0
 where status not in ('FAILED', 'CLOSED')
   and exists (select 1 from refunds older
                where older.provider_id = refunds.provider_id and older.transaction_id = refunds.transaction_id
                  and older.status not in ('FAILED', 'CLOSED') and older.id < refunds.id);
create unique index refunds_one_holder_per_order on refunds (provider_id, transaction_id)
 where holds_order = 1 and status not in ('FAILED', 'CLOSED');

-- 3. Complaints from before a provider's automation start are recorded and listed, never acted on by themselves.
alter table providers add column automation_since bigint not null default 0;
update providers set automation_since = created_at - (created_at % 1000);
alter table complaints add column historical integer not null default 0;
-- Whether the complaint was counted in a backlog digest (or told about on its own).
alter table complaints add column backlog_notified integer not null default 0;
