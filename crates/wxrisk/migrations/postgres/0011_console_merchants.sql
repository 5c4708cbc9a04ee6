-- The console's sub-merchant and violation pages: indexes for the figures a page of sub-merchants shows in grouped
-- queries (complaints per sub-merchant already have complaints_by_mchid), and for violations listed by date.

-- Deadline misses of the last days: the 'sla_overdue' steps of a window, by time, with their complaint (whose
-- sub-merchant is then read by primary key): bounded by the window, whatever a sub-merchant's history.
create index complaint_timeline_by_step on complaint_timeline (step, at, complaint_row_id);
-- Refunds per sub-merchant over a window.
create index refunds_by_merchant on refunds (sub_mchid, created_at);
-- Violations of a date range, whatever the provider.
create index violations_created on violations (created_at);
