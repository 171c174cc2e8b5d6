-- Fair share (bot/fair_share.py, bot/dispatcher.py): every job waits in PostgreSQL until the
-- dispatcher hands it to its stream, a few jobs ahead of the workers, in deficit round-robin
-- order across guilds and members. Turbo is a lane of its own: workers take it first.
ALTER TABLE jobs DROP CONSTRAINT jobs_lane_is_fast_or_relax;
ALTER TABLE jobs ADD CONSTRAINT jobs_lane_is_known CHECK (lane IN ('fast', 'relax', 'turbo'));

-- The waiting jobs of one stream, for the dispatcher.
CREATE INDEX jobs_waiting_by_stream ON jobs (model, lane, id)
    WHERE status = 'queued' AND dispatched_at IS NULL;

-- The deficit round-robin's state of each stream (model and lane), kept between
-- dispatches; written only under the stream's advisory lock.
CREATE TABLE fair_share (
    stream     text PRIMARY KEY,
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
