-- API tokens carry a scope (read < operate < admin) and an optional expiry.
-- Tokens made before scopes existed could do everything, so they become `admin`: nothing that works today stops
-- working. The default then goes, so a new token must name its scope.
alter table api_tokens add column scope text not null default 'admin'
    constraint api_tokens_scope check (scope in ('read', 'operate', 'admin'));
alter table api_tokens alter column scope drop default;
-- Unix milliseconds; null: never expires.
alter table api_tokens add column expires_at bigint;
