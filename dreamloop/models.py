"""`dreamloop models`: the model versions A/B routing splits traffic between.

    dreamloop models                      list versions, their weights and traffic shares
    dreamloop models add NAME --model M   a version served under registry model M
    dreamloop models weight NAME W        its traffic weight (0 takes it out of routing)
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from db.connection import connect
from db.model_versions import (
    ModelVersion,
    ensure_model_version,
    list_model_versions,
    set_traffic_weight,
)
from dreamloop import services
from dreamloop.settings import Settings, SettingsError
from generation.registry import load_registry


async def list_versions(settings: Settings) -> list[tuple[ModelVersion, bool]]:
    """Every version, with whether a worker serves its model now."""
    queue = services.job_queue(settings)
    connection = await connect(services.database_url(settings))
    try:
        versions = await list_model_versions(connection)
    finally:
        await connection.close()
    return [(v, await queue.is_served(v.model)) for v in versions]


async def add_version(settings: Settings, name: str, model: str, source: str | None) -> None:
    spec = load_registry(settings.models_file, settings.data_dir).get(model)
    connection = await connect(services.database_url(settings))
    try:
        await ensure_model_version(connection, name, spec.name, source or spec.source)
    finally:
        await connection.close()


async def set_weight(settings: Settings, name: str, weight: float) -> None:
    """Refused for a version nobody serves: routing would send members' jobs nowhere."""
    served = dict((v.name, (v, up)) for v, up in await list_versions(settings))
    if name not in served:
        raise SettingsError(f"there is no model version {name!r}: add it with "
                            f"`dreamloop models add {name} --model MODEL` first")
    version, up = served[name]
    if weight > 0 and not up:
        raise SettingsError(f"no worker serves {version.model!r} (the model of {name!r}) now: "
                            f"start one (`dreamloop worker --model {version.model}`) first")
    connection = await connect(services.database_url(settings))
    try:
        await set_traffic_weight(connection, name, weight)
    finally:
        await connection.close()


def print_versions(rows: list[tuple[ModelVersion, bool]]) -> None:
    total = sum(v.traffic_weight for v, up in rows if up)
    table = Table("version", "model", "weight", "share now", "served", title="model versions")
    for version, up in rows:
        share = version.traffic_weight / total if up and total else 0.0
        table.add_row(version.name, version.model, f"{version.traffic_weight:g}",
                      f"{100 * share:.0f}%", "yes" if up else "no")
    Console().print(table)
