"""The serving commands with their health endpoint (dreamloop/health.py): `dreamloop
worker`, `dreamloop bot` and `dreamloop run`.

The endpoint starts first, so /livez answers and /readyz says 503 while torch is imported
and the models load and warm (minutes for a large model); then the work starts.
`dreamloop run` serves one endpoint (on the bot's port, 9100 by default) whose registry
holds the bot's metrics and its local workers' alike; it is ready once the bot is and
every local pool is warmed.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from dreamloop import services
from dreamloop.health import BOT_PORT, WORKER_PORT, Health, serving
from dreamloop.settings import Settings
from generation.keys import LANES
from generation.metrics import WorkerMetrics
from generation.registry import load_registry


def metrics_port(settings: Settings, default: int) -> int:
    return default if settings.metrics_port is None else settings.metrics_port


async def serve_worker(settings: Settings, models: list[str] | None, lanes: tuple[str, ...],
                       grace_s: float, prepare: Callable[[], None]) -> None:
    metrics = WorkerMetrics()
    health = Health(metrics.registry, checks=[_pools_ready(metrics)])
    async with serving(health, metrics_port(settings, WORKER_PORT)):
        [pool] = await asyncio.to_thread(_pools, settings, models, lanes, metrics, False,
                                         prepare)
        from generation.worker import serve, warm_up

        await warm_up(pool)
        metrics.set_ready()
        await serve(pool, grace_s)
        health.live = False


async def serve_bot(settings: Settings, sync_to: int | bool | None) -> None:
    from dreamloop.bot_runner import run_bot

    health = Health(CollectorRegistry())
    async with serving(health, metrics_port(settings, BOT_PORT)):
        await run_bot(settings, health, sync_to=sync_to)


async def serve_all(settings: Settings, models: list[str] | None,
                    sync_to: int | bool | None, prepare: Callable[[], None]) -> None:
    from dreamloop.bot_runner import run_bot

    metrics = WorkerMetrics()
    health = Health(metrics.registry, checks=[_pools_ready(metrics)])
    async with serving(health, metrics_port(settings, BOT_PORT)):
        pools = await asyncio.to_thread(_pools, settings, models, LANES, metrics, True,
                                        prepare)
        from generation.worker import warm_up

        for pool in pools:
            await warm_up(pool)
        metrics.set_ready()
        # Jobs nobody chose a model for go to what this machine serves, not an unserved default.
        await run_bot(settings, health, pools, sync_to=sync_to,
                      default_model=models[0] if models else None)


def _pools_ready(metrics: WorkerMetrics):
    async def ready() -> list[str]:
        return [] if metrics.is_ready else ["the models are loading and warming up"]

    return ready


def _pools(settings: Settings, models: list[str] | None, lanes: tuple[str, ...],
           metrics: WorkerMetrics, per_gpu: bool, prepare: Callable[[], None]) -> list:
    """Sampling pools with their engines loaded. torch is imported here (run it in a
    thread), after prepare (the CLI's quieting of the libraries). per_gpu: one pool per local
    GPU, or one on the CPU; else one on torch's default device. The bot never imports torch
    (its image has none), so this module names none of the GPU libraries itself."""
    prepare()
    from generation.pool import SamplingPool
    from generation.worker import load_engines, local_devices

    registry = load_registry(settings.models_file, settings.data_dir)
    specs = [registry.get(name) for name in models or [registry.default]]
    devices = local_devices() if per_gpu else [None]
    host = f"{socket.gethostname()}-{os.getpid()}"
    return [SamplingPool(load_engines(specs, metrics, device), services.job_queue(settings),
                         services.blob_store(settings),
                         host if device is None else f"{host}-{device}",
                         services.pool_settings(settings, lanes), metrics)
            for device in devices]
