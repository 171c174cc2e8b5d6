-- A server's own banned words and patterns (/rules add), applied to prompts and negative
-- prompts with dreamloop's default list (bot/default_rules.toml; a server turns that off
-- with /rules defaults off, kept as guilds.settings->'default_rules' = false). The matching
-- rule is in bot/moderation.py. Members never see the patterns, only the rule's name or id.
CREATE TABLE moderation_rules (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id    bigint NOT NULL,
    pattern     text NOT NULL,  -- as the admin wrote it, checked by bot/moderation.py
    name        text,  -- what a refusal names; NULL: the rule's id is named instead
    created_by  bigint NOT NULL,  -- the admin who added it
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT moderation_rules_pattern_once_per_guild UNIQUE (guild_id, pattern),
    CONSTRAINT moderation_rules_pattern_is_short CHECK (length(pattern) BETWEEN 1 AND 60),
    CONSTRAINT moderation_rules_name_is_short CHECK (length(name) BETWEEN 1 AND 60)
);
