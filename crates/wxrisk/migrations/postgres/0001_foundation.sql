-- Foundation: providers, sub-merchants, channels, users, API tokens, audit log, job queue.
-- Conventions (shared with the PostgreSQL twin of this file): times are Unix milliseconds (bigint), booleans are
-- 0/1 integers, JSON is text, secrets are sealed text `v1.<key id>.<base64>` in columns named *_sealed.

create table providers (
    id bigint generated always as identity primary key,
    name text not null,
    mchid text not null unique,
    appid text not null,
    merchant_cert_serial text not null,
    merchant_private_key_sealed text not null,
    merchant_cert_pem text,
    wechatpay_public_key_id text,
    wechatpay_public_key_pem text,
    apiv3_key_sealed text not null,
    refund_notify_url text,
    default_reply text not null,
    default_auto_refund integer not null default 0,
    created_at bigint not null,
    updated_at bigint not null
);

create table platform_certificates (
    id bigint generated always as identity primary key,
    provider_id bigint not null references providers(id) on delete cascade,
    serial text not null,
    pem text not null,
    not_before bigint not null,
    not_after bigint not null,
    source text not null check (source in ('uploaded', 'downloaded')),
    created_at bigint not null,
    unique (provider_id, serial)
);

create table merchants (
    id bigint generated always as identity primary key,
    provider_id bigint not null references providers(id),
    mchid text not null,
    name text not null,
    reply_text text,
    auto_refund integer not null default 0,
    enabled integer not null default 1,
    created_at bigint not null,
    updated_at bigint not null,
    unique (provider_id, mchid)
);
create index merchants_mchid on merchants (mchid);

create table channels (
    id bigint generated always as identity primary key,
    provider_id bigint not null references providers(id),
    merchant_id bigint references merchants(id) on delete cascade,
    kind text not null,
    name text not null,
    enabled integer not null default 1,
    settings text not null,
    secrets_sealed text,
    created_at bigint not null,
    updated_at bigint not null
);
create index channels_owner on channels (provider_id, merchant_id);

create table users (
    id bigint generated always as identity primary key,
    username text not null unique,
    password_hash text not null,
    disabled integer not null default 0,
    created_at bigint not null,
    updated_at bigint not null
);

create table api_tokens (
    id bigint generated always as identity primary key,
    name text not null,
    token_hash text not null unique,
    token_prefix text not null,
    created_at bigint not null,
    last_used_at bigint,
    revoked_at bigint
);
create unique index api_tokens_active_name on api_tokens (name) where revoked_at is null;

create table audit_log (
    id bigint generated always as identity primary key,
    at bigint not null,
    actor text not null,
    action text not null,
    target_type text not null,
    target_id text not null,
    detail text not null
);
create index audit_log_target on audit_log (target_type, target_id);

create table jobs (
    id bigint generated always as identity primary key,
    kind text not null,
    dedupe_key text not null unique,
    payload text not null,
    provider_id bigint,
    status text not null check (status in ('queued', 'running', 'succeeded', 'dead')),
    attempts integer not null default 0,
    run_at bigint not null,
    locked_until bigint,
    locked_by text,
    last_error text,
    created_at bigint not null,
    updated_at bigint not null,
    finished_at bigint
);
create index jobs_due on jobs (status, run_at);
create index jobs_kind on jobs (kind, status);

create table job_attempts (
    id bigint generated always as identity primary key,
    job_id bigint not null references jobs(id) on delete cascade,
    attempt integer not null,
    worker text not null,
    started_at bigint not null,
    finished_at bigint,
    duration_ms bigint,
    outcome text not null check (outcome in ('running', 'succeeded', 'retry', 'dead', 'lease_expired')),
    http_status integer,
    code text,
    message text,
    body text,
    next_attempt_at bigint
);
create index job_attempts_job on job_attempts (job_id, attempt);
