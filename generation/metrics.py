"""A worker's Prometheus metrics: GPU time, batch sizes, outcomes, model loading, readiness.

Torch-free (prometheus-client only). Each WorkerMetrics owns its own registry, so several
pools in one test process keep their counts apart; `dreamloop worker` serves it over HTTP
(dreamloop/health.py), `dreamloop run` serves it together with the bot's.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# A tiny model's step on a CPU is milliseconds; a FLUX job on a slow GPU is minutes.
GPU_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
BATCH_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
LOAD_SECONDS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        on = {"registry": self.registry}
        self.gpu_seconds = Histogram(
            "dreamloop_worker_gpu_seconds", "GPU time per job: its share of its batch's "
            "pipeline call", ["model", "kind"], buckets=GPU_SECONDS, **on)
        self.batch_size = Histogram(
            "dreamloop_worker_batch_size", "Jobs per pipeline call", ["model"],
            buckets=BATCH_SIZES, **on)
        self.jobs = Counter(
            "dreamloop_worker_jobs", "Jobs a worker finished: succeeded, cancelled, or failed "
            "(one failed attempt; the job is retried, then dead-lettered)",
            ["model", "kind", "outcome"], **on)
        self.load_seconds = Gauge(
            "dreamloop_worker_model_load_seconds", "Time to load a model's pipeline",
            ["model"], **on)
        self.warm_seconds = Gauge(
            "dreamloop_worker_model_warm_seconds", "Time of a model's warm-up call",
            ["model"], **on)
        self.classify_seconds = Histogram(
            "dreamloop_worker_classify_seconds", "Image classifier time per job (all its "
            "images; generation/safety.py)", ["model"], buckets=GPU_SECONDS, **on)
        self.images_flagged = Counter(
            "dreamloop_worker_images_flagged", "Images the classifier flagged", ["model"], **on)
        self.ready = Gauge(
            "dreamloop_worker_ready", "1 once every model is loaded and warmed", **on)
        self.is_ready = False

    def set_ready(self) -> None:
        self.is_ready = True
        self.ready.set(1)

    def batch(self, model: str, size: int) -> None:
        self.batch_size.labels(model).observe(size)

    def job(self, model: str, kind: str, outcome: str, gpu_ms: int | None = None) -> None:
        self.jobs.labels(model, kind, outcome).inc()
        if gpu_ms is not None:
            self.gpu_seconds.labels(model, kind).observe(gpu_ms / 1000)

    def classified(self, model: str, classify_ms: int, flagged: int) -> None:
        self.classify_seconds.labels(model).observe(classify_ms / 1000)
        self.images_flagged.labels(model).inc(flagged)
