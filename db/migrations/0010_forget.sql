-- /forget-me (bot/forget_me.py, bot/forget.py): a member's rows are deleted outright (their
-- jobs, images, feedback, comparisons and /rate pairs cascade from members). What stays
-- is what later exports need to keep them out, and never their Discord id:
--
-- exports: every folder `dreamloop export` wrote, so the exports written before a member
-- forgets can be rewritten without them. cleaned_through: the last forgotten_members row
-- already taken out of the folder's files.
CREATE TABLE exports (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    folder           text NOT NULL,  -- absolute, on the machine that ran `dreamloop export`
    format           text NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT now(),
    cleaned_through  bigint NOT NULL DEFAULT 0,
    CONSTRAINT exports_format_is_known CHECK (format IN ('pickapic', 'kto', 'battles')),
    CONSTRAINT exports_one_row_per_folder_and_format UNIQUE (folder, format)
);

-- One row per /forget-me. member_hash is the salted hash exports carry (flywheel/exports.py
-- member_hash, DREAMLOOP_EXPORT_SALT), NULL when the bot that forgot had no salt.
-- image_ids and comparison_ids name the rows of exports that showed their images (other
-- members' votes on them included): an export's rows carry image uids and ranking ids, and
-- these let a rewrite, or an export of an older backup, drop them.
CREATE TABLE forgotten_members (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_hash     bigint,
    image_ids       bigint[] NOT NULL DEFAULT '{}',
    comparison_ids  bigint[] NOT NULL DEFAULT '{}',
    forgotten_at    timestamptz NOT NULL DEFAULT now()
);
