"""Discord object payloads (users, roles, channels, members, messages) the double sends."""

from __future__ import annotations

# Permission bits used by the double's roles (discord-api-docs, topics/permissions).
VIEW_CHANNEL, SEND_MESSAGES, ATTACH_FILES, MANAGE_GUILD = 1 << 10, 1 << 11, 1 << 15, 1 << 5
EVERYONE_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | ATTACH_FILES | (1 << 31)  # + commands


def user(user_id: int, name: str, bot: bool = False) -> dict:
    return {"id": str(user_id), "username": name, "global_name": name.title(),
            "discriminator": "0", "avatar": None, "bot": bot, "public_flags": 0}


def role(role_id: int, name: str, permissions: int, position: int) -> dict:
    return {"id": str(role_id), "name": name, "permissions": str(permissions),
            "position": position, "color": 0, "hoist": False, "managed": False,
            "mentionable": True, "flags": 0, "icon": None, "unicode_emoji": None}


def text_channel(channel_id: int, guild_id: int, name: str, position: int,
                 nsfw: bool = False) -> dict:
    """nsfw: Discord's age-restricted mark (discord.py's TextChannel.is_nsfw())."""
    return {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": name,
            "position": position, "permission_overwrites": [], "nsfw": nsfw, "topic": None,
            "last_message_id": None, "rate_limit_per_user": 0, "parent_id": None, "flags": 0}


def member(user_payload: dict, role_ids: list[int], joined_at: str, permissions: int) -> dict:
    return {"user": user_payload, "roles": [str(r) for r in role_ids], "joined_at": joined_at,
            "deaf": False, "mute": False, "flags": 0, "nick": None, "avatar": None,
            "pending": False, "permissions": str(permissions)}


def attachment(attachment_id: int, filename: str, data: bytes, url: str,
               content_type: str | None) -> dict:
    return {"id": str(attachment_id), "filename": filename, "size": len(data), "url": url,
            "proxy_url": url, "content_type": content_type}


def message(message_id: int, channel_id: int, guild_id: int, author: dict, body: dict,
            timestamp: str) -> dict:
    """A message as Discord returns it, from the fields a bot sent."""
    return {"id": str(message_id), "channel_id": str(channel_id), "guild_id": str(guild_id),
            "author": author, "content": body.get("content") or "",
            "embeds": body.get("embeds") or [], "components": body.get("components") or [],
            "attachments": [], "timestamp": timestamp, "edited_timestamp": None, "tts": False,
            "pinned": False, "type": 0, "flags": body.get("flags") or 0,
            "mention_everyone": False, "mentions": [], "mention_roles": []}
