-- The console dashboard: indexes that bound each of its figures (store::dashboard).

-- Unreplied open complaints by their reply deadline ("due soon or overdue").
create index complaints_reply_due on complaints (reply_due_at) where replied_at is null and state <> 'PROCESSED';
-- Complaints per day and state: read from the index alone.
create index complaints_time_state on complaints (complaint_time, state);
-- Refunds per day and status with their amounts, and the failed ones of the last days: read from the index alone.
create index refunds_created on refunds (created_at, status, amount);
-- Callbacks refused in the last hour.
create index callback_rejections_received on callback_rejections (received_at);
