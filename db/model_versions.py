"""Model versions: what the leaderboard ranks and A/B routing splits traffic between."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class ModelVersion:
    id: int
    name: str
    model: str
    source: str
    traffic_weight: float


async def ensure_model_version(conn: asyncpg.Connection, name: str, model: str,
                               source: str) -> ModelVersion:
    """The version called name, created on first use (a new one gets no traffic weight)."""
    row = await conn.fetchrow(
        """INSERT INTO model_versions (name, model, source) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE SET name = excluded.name
           RETURNING id, name, model, source, traffic_weight""", name, model, source)
    return ModelVersion(**row)


async def list_model_versions(conn: asyncpg.Connection) -> list[ModelVersion]:
    rows = await conn.fetch(
        "SELECT id, name, model, source, traffic_weight FROM model_versions ORDER BY id")
    return [ModelVersion(**row) for row in rows]


async def set_traffic_weight(conn: asyncpg.Connection, name: str, weight: float) -> bool:
    row = await conn.fetchrow(
        "UPDATE model_versions SET traffic_weight = $2 WHERE name = $1 RETURNING id", name,
        weight)
    return row is not None
