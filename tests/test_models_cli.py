"""`dreamloop models`: versions and their traffic weights; a weight for a version nobody
serves is refused."""

from __future__ import annotations

from db.connection import with_schema
from generation.queue import JobQueue
from tests.test_cli import dreamloop


async def test_versions_get_weights_only_when_served(database_url, db_schema, redis_url, keys,
                                                    redis_client, cli_env):
    env = cli_env | {"DREAMLOOP_DATABASE_URL": with_schema(database_url, db_schema),
                     "DREAMLOOP_REDIS_URL": redis_url, "DREAMLOOP_REDIS_PREFIX": keys.prefix}
    assert dreamloop("migrate", env=env).returncode == 0
    added = dreamloop("models", "add", "tiny@dpo-1", "--model", "tiny-random", env=env)
    assert added.returncode == 0 and "tiny@dpo-1" in added.stdout

    refused = dreamloop("models", "weight", "tiny@dpo-1", "2", env=env)
    assert refused.returncode == 2
    assert "no worker serves 'tiny-random' (the model of 'tiny@dpo-1') now" in refused.stderr

    await JobQueue(redis_client, keys).announce("worker-1", ["tiny-random"])
    weighted = dreamloop("models", "weight", "tiny@dpo-1", "2", env=env)
    assert weighted.returncode == 0, weighted.stderr
    row = next(line for line in weighted.stdout.splitlines() if "tiny@dpo-1" in line)
    assert "100%" in row and "yes" in row

    unknown = dreamloop("models", "weight", "nope", "1", env=env)
    assert unknown.returncode == 2 and "there is no model version 'nope'" in unknown.stderr
