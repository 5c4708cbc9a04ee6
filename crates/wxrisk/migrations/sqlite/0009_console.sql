-- The operator console: users' roles, sign-in sessions (shared by every instance), failed sign-ins (throttling),
-- and the one-time link that creates the first admin.

-- viewer < operator < admin (the same ladder as API token scopes: read < operate < admin). Users made before
-- roles existed were made by the server's own command line: they become admins.
alter table users add column role text not null default 'admin'
    constraint users_role check (role in ('viewer', 'operator', 'admin'));
alter table users add column last_login_at bigint;

-- A signed-in browser. `id` is the SHA-256 of the cookie's token (the token itself is never stored).
create table console_sessions (
    id text primary key,
    user_id bigint not null references users(id) on delete cascade,
    -- Every form carries it; a POST without it is refused.
    csrf_token text not null,
    -- A message for the next page (after a redirect), shown once.
    flash text,
    created_at bigint not null,
    last_seen_at bigint not null,
    expires_at bigint not null,
    ip text not null,
    user_agent text not null
);
create index console_sessions_user on console_sessions (user_id);
create index console_sessions_expiry on console_sessions (expires_at);

-- Failed sign-ins, counted per account and per address over a window.
create table login_failures (
    id integer primary key autoincrement,
    username text not null,
    ip text not null,
    at bigint not null
);
create index login_failures_user on login_failures (username, at);
create index login_failures_ip on login_failures (ip, at);

-- The first-run link (SHA-256 of its token), valid once and for a day, while no user exists.
create table setup_tokens (
    token_hash text primary key,
    created_at bigint not null,
    expires_at bigint not null,
    used_at bigint
);
