-- Retention (finished work deleted in small batches, workflow/retention.rs) and the once-per-certificate expiry
-- alert (workflow/certificates.rs).

-- What the retention's deletes look for: finished jobs by age, the members of a digest, callbacks by age.
create index jobs_finished on jobs (status, finished_at);
create index deliveries_digested_into on deliveries (digested_into);
create index inbound_notifications_received on inbound_notifications (received_at);

-- A row here is the "once" of a certificate's expiry alert: inserted in the transaction that enqueues the
-- notification, whatever later happens to that job and its deliveries. Never deleted by the retention.
create table certificate_alerts (
    provider_id bigint not null references providers(id) on delete cascade,
    -- `merchant` (the API certificate the provider signs with) or `platform` (WeChat Pay's).
    kind text not null,
    serial text not null,
    not_after bigint not null,
    alerted_at bigint not null,
    primary key (provider_id, kind, serial)
);
