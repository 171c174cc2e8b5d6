-- dreamloop's record of truth: members, guilds, model versions, jobs, images,
-- every click and vote (feedback_events, append-only) and the pairs they imply
-- (comparisons). Constraint names state the rule, so a violation reads clearly.
-- Deleting a member deletes everything they made and said (data deletion requests).

CREATE TABLE members (
    id          bigint PRIMARY KEY,  -- Discord user id
    settings    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT members_id_is_a_snowflake CHECK (id >= 0),
    CONSTRAINT members_settings_is_an_object CHECK (jsonb_typeof(settings) = 'object')
);

CREATE TABLE guilds (
    id          bigint PRIMARY KEY,  -- Discord guild id
    settings    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT guilds_id_is_a_snowflake CHECK (id >= 0),
    CONSTRAINT guilds_settings_is_an_object CHECK (jsonb_typeof(settings) = 'object')
);

-- A model version is what the leaderboard ranks and A/B routing splits traffic between:
-- a registry model (e.g. sdxl) at one set of weights (e.g. sdxl@dpo-round-3).
CREATE TABLE model_versions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    model           text NOT NULL,  -- the registry name workers serve it under
    source          text NOT NULL,  -- hub id or path of its weights
    traffic_weight  double precision NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT model_versions_traffic_weight_at_least_0 CHECK (traffic_weight >= 0)
);

CREATE TABLE jobs (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The idempotency key: Discord retries an interaction with the same id, and a
    -- retry must find the job it already made. NULL for jobs from the CLI.
    interaction_id     bigint UNIQUE,
    kind               text NOT NULL,
    status             text NOT NULL DEFAULT 'queued',
    model              text NOT NULL,  -- the registry name: which stream and workers
    model_version_id   bigint NOT NULL REFERENCES model_versions (id),
    lane               text NOT NULL DEFAULT 'fast',
    request            jsonb NOT NULL,  -- the GenerationRequest, as the worker receives it
    member_id          bigint REFERENCES members (id) ON DELETE CASCADE,
    guild_id           bigint REFERENCES guilds (id) ON DELETE SET NULL,
    channel_id         bigint,
    parent_image_id    bigint,  -- variations and upscales; foreign key added below
    attempts           integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    progress_at        timestamptz,  -- last sign of life: start or a progress event
    finished_at        timestamptz,
    queue_ms           integer,
    gpu_ms             integer,
    error              text,
    status_message_id  bigint,  -- the "queued (#n)" message edited with progress
    result_message_id  bigint,  -- the grid posted when it is done
    CONSTRAINT jobs_kind_is_imagine_variation_upscale_or_reroll
        CHECK (kind IN ('imagine', 'variation', 'upscale', 'reroll')),
    CONSTRAINT jobs_status_queued_running_succeeded_failed_cancelled_dead
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'dead')),
    CONSTRAINT jobs_lane_is_fast_or_relax CHECK (lane IN ('fast', 'relax')),
    CONSTRAINT jobs_attempts_at_least_0 CHECK (attempts >= 0),
    CONSTRAINT jobs_queue_ms_at_least_0 CHECK (queue_ms >= 0),
    CONSTRAINT jobs_gpu_ms_at_least_0 CHECK (gpu_ms >= 0),
    CONSTRAINT jobs_request_is_an_object CHECK (jsonb_typeof(request) = 'object'),
    CONSTRAINT jobs_finished_when_status_is_final
        CHECK ((status IN ('queued', 'running')) = (finished_at IS NULL)),
    CONSTRAINT jobs_variation_and_upscale_have_a_parent
        CHECK ((kind IN ('variation', 'upscale')) = (parent_image_id IS NOT NULL))
);

-- Queue position and the reconciler read only active jobs: keep those indexes small.
CREATE INDEX jobs_queued_by_stream ON jobs (model, lane, id) WHERE status = 'queued';
CREATE INDEX jobs_active_by_progress ON jobs (coalesce(progress_at, created_at))
    WHERE status IN ('queued', 'running');
CREATE INDEX jobs_active_by_member ON jobs (member_id, status)
    WHERE status IN ('queued', 'running');
CREATE INDEX jobs_by_member_created ON jobs (member_id, created_at);

CREATE TABLE images (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id            bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    slot              smallint NOT NULL,  -- 1-based position in the grid
    seed              bigint NOT NULL,
    blob_key          text NOT NULL UNIQUE,
    width             integer NOT NULL,
    height            integer NOT NULL,
    sha256            text NOT NULL,
    model_version_id  bigint NOT NULL REFERENCES model_versions (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT images_one_per_slot UNIQUE (job_id, slot),
    CONSTRAINT images_slot_1_to_4 CHECK (slot BETWEEN 1 AND 4),
    CONSTRAINT images_seed_at_least_0 CHECK (seed >= 0),
    CONSTRAINT images_size_positive CHECK (width > 0 AND height > 0),
    CONSTRAINT images_sha256_is_64_hex_digits CHECK (sha256 ~ '^[0-9a-f]{64}$')
);

ALTER TABLE jobs ADD CONSTRAINT jobs_parent_image_exists
    FOREIGN KEY (parent_image_id) REFERENCES images (id) ON DELETE CASCADE;
CREATE INDEX jobs_by_parent_image ON jobs (parent_image_id) WHERE parent_image_id IS NOT NULL;

-- Every click and vote, as it happened. Never updated: the flywheel re-derives
-- pairs and ratings from it. Deleted only with the member who made it.
CREATE TABLE feedback_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    interaction_id  bigint UNIQUE,  -- a retried click is recorded once
    member_id       bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    job_id          bigint REFERENCES jobs (id) ON DELETE CASCADE,
    image_id        bigint REFERENCES images (id) ON DELETE CASCADE,
    shown_slot      smallint,  -- where the image was shown (grid slot, or 1/2 left/right)
    shown_at        timestamptz NOT NULL,  -- when the member first saw it
    decided_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT feedback_events_kind_is_known CHECK (kind IN (
        'upscale_pick', 'variation_pick', 'reroll', 'thumbs_up', 'thumbs_down',
        'favourite', 'vote')),
    CONSTRAINT feedback_events_shown_slot_1_to_4 CHECK (shown_slot BETWEEN 1 AND 4),
    CONSTRAINT feedback_events_decided_after_shown CHECK (decided_at >= shown_at),
    CONSTRAINT feedback_events_image_kinds_name_an_image
        CHECK (kind IN ('reroll', 'vote') OR image_id IS NOT NULL),
    CONSTRAINT feedback_events_reroll_names_its_job CHECK (kind <> 'reroll' OR job_id IS NOT NULL)
);

CREATE INDEX feedback_events_by_job ON feedback_events (job_id);
CREATE INDEX feedback_events_by_image ON feedback_events (image_id);
CREATE INDEX feedback_events_by_member ON feedback_events (member_id, decided_at);

CREATE FUNCTION feedback_events_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'feedback_events is append-only: record a new event instead of changing one'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER feedback_events_no_update BEFORE UPDATE ON feedback_events
    FOR EACH ROW EXECUTE FUNCTION feedback_events_are_append_only();

-- Pairs of images of one prompt and which one won: explicit votes, and the pairs
-- implied by picks (a U pick beats the other three; V picks are kept apart).
CREATE TABLE comparisons (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    image_a_id         bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    image_b_id         bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    prompt             text NOT NULL,
    label              text NOT NULL,
    source             text NOT NULL,
    member_id          bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    feedback_event_id  bigint REFERENCES feedback_events (id) ON DELETE CASCADE,
    shown_slot_a       smallint NOT NULL,
    shown_slot_b       smallint NOT NULL,
    decision_ms        integer,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT comparisons_label_is_a_b_tie_or_both_bad
        CHECK (label IN ('a', 'b', 'tie', 'both_bad')),
    CONSTRAINT comparisons_source_is_explicit_or_implicit
        CHECK (source IN ('explicit', 'implicit_upscale', 'implicit_variation')),
    CONSTRAINT comparisons_two_different_images CHECK (image_a_id <> image_b_id),
    CONSTRAINT comparisons_shown_slots_1_to_4
        CHECK (shown_slot_a BETWEEN 1 AND 4 AND shown_slot_b BETWEEN 1 AND 4
               AND shown_slot_a <> shown_slot_b),
    CONSTRAINT comparisons_decision_ms_at_least_0 CHECK (decision_ms >= 0)
);

-- One explicit vote per member per pair, whichever side each image was shown on.
CREATE UNIQUE INDEX comparisons_one_vote_per_member_and_pair ON comparisons
    (member_id, least(image_a_id, image_b_id), greatest(image_a_id, image_b_id))
    WHERE source = 'explicit';
CREATE INDEX comparisons_by_image_a ON comparisons (image_a_id);
CREATE INDEX comparisons_by_image_b ON comparisons (image_b_id);
CREATE INDEX comparisons_by_created ON comparisons (created_at);
