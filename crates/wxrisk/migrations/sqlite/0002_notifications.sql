-- Notifications: one delivery per (event, channel, recipient), each carried by one job; official-account access
-- tokens shared by all instances; per-provider template overrides; the provider's message id on job attempts.

create table deliveries (
    id integer primary key autoincrement,
    job_id bigint not null unique references jobs(id) on delete cascade,
    provider_id bigint not null,
    channel_id bigint not null,
    channel_kind text not null,
    recipient text not null,
    event_kind text not null,
    event_key text not null,
    subject text not null,
    -- The rendered message and its fields, JSON (no secrets: templates see event data only).
    message text not null,
    locale text not null,
    -- What the provider answered last, and its id for the message (msgid, SerialNo, SMTP reply, robot answer).
    last_code text,
    external_id text,
    -- Set when this delivery was sent inside another's digest.
    digested_into bigint,
    created_at bigint not null,
    updated_at bigint not null,
    delivered_at bigint
);
create index deliveries_destination on deliveries (channel_id, recipient, delivered_at);
create index deliveries_event on deliveries (event_kind, created_at);

create table oa_tokens (
    appid text primary key,
    access_token_sealed text not null,
    expires_at bigint not null,
    updated_at bigint not null
);

create table notification_templates (
    id integer primary key autoincrement,
    provider_id bigint not null references providers(id) on delete cascade,
    event_kind text not null,
    locale text not null,
    subject text not null,
    text_body text not null,
    html_body text not null,
    updated_at bigint not null,
    unique (provider_id, event_kind, locale)
);

alter table job_attempts add column external_id text;
alter table providers add column locale text not null default 'zh-CN';
