-- API tokens carry a scope (read < operate < admin) and an optional expiry.
-- Tokens made before scopes existed could do everything, so they become `admin`: nothing that works today stops
-- working. (SQLite cannot drop a column default afterwards; wxrisk names the scope on every insert, so the
-- default only ever applies to the rows that exist now.)
alter table api_tokens add column scope text not null default 'admin'
    constraint api_tokens_scope check (scope in ('read', 'operate', 'admin'));
-- Unix milliseconds; null: never expires.
alter table api_tokens add column expires_at bigint;
