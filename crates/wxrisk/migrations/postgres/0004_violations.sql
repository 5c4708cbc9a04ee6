-- Violations: disposal records of sub-merchants (one per WeChat record_id) and every event about them; what WeChat
-- limits of each sub-merchant; and the risk state that remembers an alert was sent.

create table violations (
    id bigint generated always as identity primary key,
    provider_id bigint not null references providers(id) on delete cascade,
    record_id text not null,
    sub_mchid text not null,
    company_name text not null,
    -- PUNISH, INTERCEPT or APPEAL: what the first event about the record was.
    kind text not null,
    risk_type text not null,
    risk_description text not null,
    punish_plan text not null,
    punish_time text not null,
    punish_time_ms bigint,
    punish_description text not null,
    -- The appeal's state as WeChat's latest APPEAL event gave it (its risk_type / plan), when there is one.
    appeal_state text,
    appeal_detail text,
    appeal_updated_at bigint,
    last_event_type text not null,
    created_at bigint not null,
    updated_at bigint not null,
    unique (provider_id, record_id)
);
create index violations_by_mchid on violations (sub_mchid, created_at);
create index violations_by_time on violations (provider_id, created_at);

create table violation_events (
    id bigint generated always as identity primary key,
    violation_row_id bigint not null references violations(id) on delete cascade,
    notification_id text not null,
    event_type text not null,
    -- The decrypted resource as WeChat sent it.
    resource text not null,
    received_at bigint not null,
    unique (violation_row_id, notification_id)
);

create table merchant_limitations (
    provider_id bigint not null references providers(id) on delete cascade,
    sub_mchid text not null,
    -- JSON: limited_functions (array), recovery_specifications (array), other_limited_functions.
    limited_functions text not null,
    details text not null,
    checked_at bigint not null,
    primary key (provider_id, sub_mchid)
);

create table merchant_risk (
    provider_id bigint not null references providers(id) on delete cascade,
    sub_mchid text not null,
    score bigint not null,
    -- Set while the score is at or over the alert threshold (the alert went out); cleared when it falls below.
    alerted_at bigint,
    crossings bigint not null,
    computed_at bigint not null,
    primary key (provider_id, sub_mchid)
);

-- Whether WeChat's customer service ever took part (the current flag clears when it finishes).
alter table complaints add column platform_involved integer not null default 0;
