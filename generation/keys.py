"""Every Redis key and group name dreamloop uses, in one place.

The prefix lets several deployments (or tests) share one Redis without
touching each other's keys.
"""

from __future__ import annotations

from dataclasses import dataclass

WORKER_GROUP = "workers"  # the consumer group GPU workers read job streams with
DELIVERY_GROUP = "deliverers"  # the consumer group the bot reads results with
# Workers take turbo first, then fast, then relax (a relax job overdue goes first: pool.py).
# Turbo costs a member twice the GPU time (bot/fair_share.py, bot/limits.py).
LANES = ("turbo", "fast", "relax")


@dataclass(frozen=True)
class Keys:
    prefix: str = "dreamloop:"

    def jobs(self, model: str, lane: str) -> str:
        """The stream of jobs for one model and lane."""
        return f"{self.prefix}jobs:{model}:{lane}"

    @property
    def results(self) -> str:
        """One entry per finished job (succeeded, failed, cancelled or dead)."""
        return f"{self.prefix}results"

    @property
    def entries(self) -> str:
        """Hash: job id → its stream entry id, while it has one (the reconciler reads it)."""
        return f"{self.prefix}entries"

    @property
    def dead(self) -> str:
        """Jobs delivered too often, copied here with the reason."""
        return f"{self.prefix}dead"

    def done(self, job_id: str) -> str:
        """Set (to a hash of its request) when a worker reports a job, with that report."""
        return f"{self.prefix}done:{job_id}"

    @property
    def bot_starts(self) -> str:
        """Hash of the last bot start's connect time and restart streak (the IDENTIFY backoff)."""
        return f"{self.prefix}bot:starts"

    def progress(self, job_id: str) -> str:
        """Pub/sub channel of a job's progress events."""
        return f"{self.prefix}progress:{job_id}"

    def cancel(self, job_id: str) -> str:
        """Set while a job is cancelled; workers check it between steps."""
        return f"{self.prefix}cancel:{job_id}"

    def click(self, member_id: int, custom_id: str) -> str:
        """Set for a few seconds after a member's click that starts GPU work (double clicks)."""
        return f"{self.prefix}click:{member_id}:{custom_id}"

    def clicks(self, member_id: int) -> str:
        """Counts a member's button clicks in the current window (bot/click_guard.py)."""
        return f"{self.prefix}clicks:{member_id}"

    def shows(self, member_id: int) -> str:
        """Counts a member's /show posts in the current minute (the key expires with it)."""
        return f"{self.prefix}shows:{member_id}"

    def serving(self, model: str) -> str:
        """Sorted set: the workers serving model, scored by when each last said so (ms)."""
        return f"{self.prefix}serving:{model}"

    def serving_lane(self, model: str, lane: str) -> str:
        """Sorted set: the workers serving model's lane, scored like serving."""
        return f"{self.prefix}serving-lane:{model}:{lane}"

    def last_error(self, job_id: str) -> str:
        """The error of a job's last failed attempt, for the dead-letter reason."""
        return f"{self.prefix}error:{job_id}"
