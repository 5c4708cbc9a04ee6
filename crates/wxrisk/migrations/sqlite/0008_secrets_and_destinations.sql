-- Secrets are sealed for their row (format v2: associated data `table.column/row`). This records when the values
-- of the old column-only format (v1) were re-sealed for their rows; from then on a v1 value is refused, so one
-- copied into a row later (from a backup, or by a database writer) never becomes that row's secret.
create table secrets_binding (
    id integer primary key check (id = 1),
    row_bound_since bigint not null
);

-- Credentials dropped because the channel's destination changed without them being given again (JSON array of
-- settings keys, e.g. ["password"]). The channel sends nothing until they are set again or removed.
alter table channels add column secrets_cleared text;
