-- Complaints: callbacks as received (the inbox), the complaints they are about with their timeline, refunds we
-- asked for, the capped log of refused callbacks, reconciliation progress, and operator idempotency keys.

-- One row per notification WeChat Pay delivered and we verified and decrypted; WeChat's `id` is the dedupe key.
create table inbound_notifications (
    id bigint generated always as identity primary key,
    provider_id bigint not null references providers(id) on delete cascade,
    notification_id text not null,
    event_type text not null,
    -- The decrypted resource (JSON). Complaint and refund resources carry no secret of ours.
    resource text not null,
    create_time text not null,
    received_at bigint not null,
    unique (provider_id, notification_id)
);

-- Callbacks refused at the door (forged, probe, stale, undecryptable, malformed); capped, newest kept.
create table callback_rejections (
    id bigint generated always as identity primary key,
    provider_id bigint,
    path text not null,
    reason text not null,
    detail text not null,
    serial text,
    body_sha256 text not null,
    body_len bigint not null,
    received_at bigint not null
);

create table complaints (
    id bigint generated always as identity primary key,
    provider_id bigint not null references providers(id) on delete cascade,
    complaint_id text not null,
    complainted_mchid text not null,
    state text not null,
    complaint_time bigint not null,
    detail text not null,
    problem_type text,
    problem_description text,
    apply_refund_amount bigint,
    amount_total bigint not null,
    -- The payer's phone: sealed under the master key, and masked for display.
    payer_phone_sealed text,
    payer_phone_masked text,
    payer_openid text,
    user_complaint_times bigint not null,
    full_refunded integer not null,
    incoming_user_response integer not null,
    in_platform_service integer not null,
    need_immediate_service integer not null,
    -- JSON: orders [{transaction_id, out_trade_no, amount}], the whole detail (payer phone removed), history.
    orders text not null,
    detail_json text not null,
    history_json text not null,
    last_action_type text,
    reply_due_at bigint not null,
    resolve_due_at bigint not null,
    replied_at bigint,
    completed_at bigint,
    -- What the last sync saw in WeChat's list (state + times + refunded + response flags): reconciliation compares it.
    fingerprint text not null,
    created_at bigint not null,
    updated_at bigint not null,
    unique (provider_id, complaint_id)
);
create index complaints_by_time on complaints (provider_id, complaint_time);
create index complaints_by_mchid on complaints (complainted_mchid, complaint_time);
create index complaints_open on complaints (state, resolve_due_at);

create table complaint_timeline (
    id bigint generated always as identity primary key,
    complaint_row_id bigint not null references complaints(id) on delete cascade,
    at bigint not null,
    step text not null,
    outcome text not null,
    detail text not null
);
create index complaint_timeline_by_complaint on complaint_timeline (complaint_row_id, id);

-- Refunds we asked WeChat Pay for. `out_refund_no` is derived from the complaint and the order, so a retried request
-- is the same refund.
create table refunds (
    id bigint generated always as identity primary key,
    provider_id bigint not null references providers(id) on delete cascade,
    complaint_id text not null,
    sub_mchid text not null,
    transaction_id text not null,
    out_trade_no text,
    out_refund_no text not null,
    amount bigint not null,
    total bigint not null,
    -- REQUESTED (not yet accepted), PROCESSING, SUCCESS, CLOSED, ABNORMAL, FAILED (refused by WeChat Pay).
    status text not null,
    refund_id text,
    user_received_account text,
    last_error text,
    -- Who asked: `auto` or the operator.
    requested_by text not null,
    created_at bigint not null,
    updated_at bigint not null,
    succeeded_at bigint,
    unique (provider_id, out_refund_no)
);
create index refunds_by_order on refunds (provider_id, transaction_id);
create index refunds_by_complaint on refunds (provider_id, complaint_id);

create table reconcile_state (
    provider_id bigint primary key references providers(id) on delete cascade,
    -- The last day (Asia/Shanghai, YYYY-MM-DD) a completed run covered.
    covered_until text not null,
    last_run_at bigint not null
);

-- Operator actions taken with an Idempotency-Key: the same key answers the same response.
create table idempotency_keys (
    actor text not null,
    key text not null,
    request_hash text not null,
    status bigint not null,
    response text not null,
    created_at bigint not null,
    primary key (actor, key)
);
