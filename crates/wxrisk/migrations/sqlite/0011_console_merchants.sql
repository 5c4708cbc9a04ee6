-- The console's sub-merchant and violation pages: indexes for the figures a page of sub-merchants shows in grouped
-- queries (complaints per sub-merchant already have complaints_by_mchid), and for violations listed by date.

-- Deadline misses of the last days: the few 'sla_overdue' steps, by time (then their complaints by primary key).
create index complaint_timeline_by_step on complaint_timeline (step, at);
-- Refunds per sub-merchant over a window.
create index refunds_by_merchant on refunds (sub_mchid, created_at);
-- Violations of a date range, whatever the provider.
create index violations_created on violations (created_at);
