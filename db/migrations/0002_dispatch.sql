-- A member's jobs beyond their concurrent cap (3 by default) wait in PostgreSQL, not in
-- the workers' streams: a GPU never runs a 4th job of one member while 3 are in flight,
-- and the others' jobs are not stuck behind one member's ten.
-- dispatched_at: when the job was handed to the workers' stream; NULL while it waits.
ALTER TABLE jobs ADD COLUMN dispatched_at timestamptz;
UPDATE jobs SET dispatched_at = created_at WHERE status IN ('queued', 'running');

-- The member's waiting jobs, oldest first, for dispatch when one of theirs finishes.
CREATE INDEX jobs_waiting_by_member ON jobs (member_id, id)
    WHERE status = 'queued' AND dispatched_at IS NULL;

-- The reconciler's question is now "dispatched, and no sign of life since": a job that
-- waited an hour for its member's slot is young again when it is dispatched.
DROP INDEX jobs_active_by_progress;
CREATE INDEX jobs_dispatched_by_progress ON jobs (coalesce(progress_at, dispatched_at))
    WHERE status IN ('queued', 'running') AND dispatched_at IS NOT NULL;
