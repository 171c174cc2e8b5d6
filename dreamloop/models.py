"""`dreamloop models`: the model versions A/B routing splits traffic between.

    dreamloop models                      list versions, their weights and traffic shares
    dreamloop models add NAME --model M   a version served under registry model M
    dreamloop models weight NAME W        its traffic weight (0 takes it out of routing)
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bot.services import WeightRefused, check_traffic_weight
from db.model_versions import (
    ModelVersion,
    ensure_model_version,
    list_model_versions,
    set_traffic_weight,
)
from dreamloop.services import database_connection, job_queue
from dreamloop.settings import Settings, SettingsError
from flywheel.routing import traffic_shares
from generation.queue import JobQueue
from generation.registry import load_registry


async def run_models(settings: Settings, action: str | None, name: str | None = None,
                     model: str | None = None, source: str | None = None,
                     weight: float | None = None) -> list[tuple[ModelVersion, bool]]:
    """Add a version or set a weight (action "add" / "weight"), then every version with
    whether a worker serves its model now; one connection each to PostgreSQL and Redis."""
    queue = job_queue(settings)
    try:
        async with database_connection(settings) as connection:
            if action == "add":
                spec = load_registry(settings.models_file, settings.data_dir).get(model)
                await ensure_model_version(connection, name, spec.name, source or spec.source)
            elif action == "weight":
                await _set_weight(connection, queue, name, weight)
            return [(v, await queue.is_served(v.model))
                    for v in await list_model_versions(connection)]
    finally:
        await queue.redis.aclose()


async def _set_weight(connection, queue: JobQueue, name: str, weight: float) -> None:
    """Refused as /models weight refuses it (check_traffic_weight says why)."""
    try:
        await check_traffic_weight(connection, queue, name, weight)
    except WeightRefused as error:
        raise SettingsError(str(error)) from None
    await set_traffic_weight(connection, name, weight)


def print_versions(rows: list[tuple[ModelVersion, bool]]) -> None:
    table = Table("version", "model", "weight", "share now", "served", title="model versions")
    for (version, up), share in zip(rows, traffic_shares(rows), strict=True):
        table.add_row(version.name, version.model, f"{version.traffic_weight:g}",
                      f"{100 * share:.0f}%", "yes" if up else "no")
    Console().print(table)
