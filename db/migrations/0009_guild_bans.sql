-- Members a server's admins stopped from using the bot there (/mod ban, /mod unban). No
-- foreign key to members: a ban outlives /forget-me, or forgetting would lift it.
CREATE TABLE guild_bans (
    guild_id   bigint NOT NULL,
    member_id  bigint NOT NULL,
    banned_by  bigint NOT NULL,
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, member_id)
);
