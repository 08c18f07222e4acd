-- Published rows older than the retention (OUTBOX_RETENTION_HOURS, a week by default) are deleted
-- by the scheduled runs (outbox_store::prune_of). They find them by age: a BRIN index is tiny and
-- nearly free to keep up on an append-only table whose rows arrive in created_at order, and it
-- lets a run with nothing old enough skip the table instead of scanning it.
CREATE INDEX outbox_created_at ON outbox USING brin (created_at);
