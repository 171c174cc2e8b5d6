"""The figures a fault test reports and asserts on: jobs lost, jobs posted twice, and GPU
runs per job (counted from the workers' logs, one "job N: waited … gpu …" line a run)."""

from __future__ import annotations

import re
from collections import Counter

from tests.bot_stack import is_grid


def grid_job(message) -> int:
    """The job a grid message belongs to (its buttons' custom_ids, "dl:u:{job}:{slot}")."""
    return int(message.custom_ids()[0].split(":")[2])


def grids_by_job(double, channel: str = "general") -> Counter:
    return Counter(grid_job(m) for m in double.channel_messages(channel) if is_grid(m))


async def fault_figures(double, db, workers, channel: str = "general") -> dict:
    async with db.acquire() as conn:
        jobs = [row["id"] for row in await conn.fetch("SELECT id FROM jobs ORDER BY id")]
    posts = grids_by_job(double, channel)
    runs = Counter(int(job) for worker in workers
                   for job in re.findall(r"job (\d+): waited", worker.text()))
    figures = {"jobs": len(jobs), "lost": sum(posts[job] == 0 for job in jobs),
               "posted twice": sum(posts[job] > 1 for job in jobs),
               "gpu runs per job": [runs[job] for job in jobs]}
    print("fault figures:", figures)
    return figures
