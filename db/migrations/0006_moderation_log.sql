-- Who did what in a server, and when: admins' actions (bans, rule and setting changes) and
-- the bot's own on their behalf (a prompt refused by a rule, an image held back by the
-- image policy). Admins read it with /mod log. Moderation must be explainable: detail names
-- the rule, never the banned word itself.
CREATE TABLE moderation_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id    bigint NOT NULL,
    actor_id    bigint,  -- the admin; NULL when the bot acted on its own (a refusal)
    action      text NOT NULL,  -- a short verb: ban, unban, rule_added, prompt_refused, …
    target_id   bigint,  -- the member acted on or refused, if any
    detail      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT moderation_log_action_is_a_word CHECK (action ~ '^[a-z_]{1,40}$'),
    CONSTRAINT moderation_log_detail_is_an_object CHECK (jsonb_typeof(detail) = 'object')
);

CREATE INDEX moderation_log_by_guild ON moderation_log (guild_id, id);
CREATE INDEX moderation_log_by_target ON moderation_log (target_id) WHERE target_id IS NOT NULL;
