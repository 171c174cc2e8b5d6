"""Delivery's reading of the results stream, against a real Redis and PostgreSQL: a result
that cannot be delivered stays pending for the next start without stopping the others."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from bot.delivery import Delivery
from bot.services import BotServices
from generation.blobs import LocalBlobStore
from generation.keys import DELIVERY_GROUP
from generation.queue import JobQueue


async def test_a_result_that_fails_stays_pending_and_the_next_ones_are_delivered(
        db, redis_client, keys, registry, tmp_path):
    services = BotServices(registry=registry, db=db, queue=JobQueue(redis_client, keys),
                           blobs=LocalBlobStore(tmp_path / "blobs"))
    delivery = Delivery(SimpleNamespace(services=services))  # reads only bot.services here
    results = keys.results
    await redis_client.xgroup_create(results, DELIVERY_GROUP, id="0", mkstream=True)
    # A result this consumer read before (a restart since) that cannot be parsed...
    bad = await redis_client.xadd(results, {"job": "1", "status": "succeeded",
                                            "result": "not json"})
    await redis_client.xreadgroup(DELIVERY_GROUP, delivery.consumer, {results: ">"})
    # ...and a new one (a failure of a job this database does not know: acknowledged).
    good = await redis_client.xadd(results, {"job": "999", "status": "failed", "error": "x"})

    task = asyncio.create_task(delivery.run())
    try:
        for _ in range(200):
            [group] = await redis_client.xinfo_groups(results)
            if group["last-delivered-id"] == good:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # time enough for a loop to read the bad entry many times
        pending = await redis_client.xpending_range(results, DELIVERY_GROUP, "-", "+", 10)
    finally:
        task.cancel()
    assert group["last-delivered-id"] == good  # the new result was read past the backlog
    assert [(p["message_id"], p["times_delivered"]) for p in pending] == [(bad, 2)]
