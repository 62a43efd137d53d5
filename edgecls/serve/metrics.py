"""What `GET /metrics` exposes (Prometheus text format), on a registry of the server's own so that two servers in one
process (tests) never share counters.

Names follow Triton's where one exists (requests by outcome, queue, per-stage durations) with an `edgecls_` prefix:
    edgecls_requests_total{endpoint, code}         every HTTP answer, by route template and status code
    edgecls_images_total{model}                    images classified
    edgecls_queue_depth{model}                     images queued for a batch, now
    edgecls_in_flight{model}                       images admitted and not yet answered (the bound is --max-queue)
    edgecls_batch_size{model}                      images per batch run (histogram): the average is sum / count
    edgecls_stage_seconds{model, stage}            read (body), decode (decode + preprocess), queue, infer (its batch),
                                                   postprocess, total (histograms)
    edgecls_drift_events_total{model, statistic}   drift events of the artifact's reference (when it carries one)
    edgecls_model_loads_total{model, result}       loads and hot swaps: loaded | refused
    edgecls_model_info{model, version, sha256, backend}  1 for each model serving now
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

STAGES = ("read", "decode", "queue", "infer", "postprocess", "total")
_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self, models: Callable[[], Iterable[Any]]):
        """models: returns the ModelSlots serving now (read at each scrape for the gauges)."""
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("edgecls_requests", "HTTP answers by route template and status code",
                                ["endpoint", "code"], registry=r)
        self.images = Counter("edgecls_images", "images classified", ["model"], registry=r)
        self.batch_size = Histogram("edgecls_batch_size", "images per batch run", ["model"], buckets=_BATCH, registry=r)
        self.stage = Histogram("edgecls_stage_seconds", "seconds per request stage: read (body), decode (decode + "
                               "preprocess), queue, infer (its batch), postprocess, total", ["model", "stage"],
                               buckets=_SECONDS, registry=r)
        self.drift = Counter("edgecls_drift_events", "drift events against the reference stored in the artifact",
                             ["model", "statistic"], registry=r)
        self.loads = Counter("edgecls_model_loads", "model loads and hot swaps by result (loaded, refused)",
                             ["model", "result"], registry=r)
        r.register(_Gauges(models))

    def observe_stages(self, model: str, seconds: dict[str, float]) -> None:
        for stage, s in seconds.items():
            self.stage.labels(model, stage).observe(s)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Gauges:
    """Read at scrape time from the models serving now, so a swapped-out model's gauges go with it."""

    def __init__(self, models: Callable[[], Iterable[Any]]):
        self.models = models

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily("edgecls_queue_depth", "images queued for a batch", labels=["model"])
        flight = GaugeMetricFamily("edgecls_in_flight", "images admitted and not yet answered", labels=["model"])
        info = GaugeMetricFamily("edgecls_model_info", "the artifact serving each model name",
                                 labels=["model", "version", "sha256", "backend"])
        for m in self.models():
            depth.add_metric([m.name], m.queue_depth)
            flight.add_metric([m.name], m.admitted)
            info.add_metric([m.name, str(m.version), m.sha256, m.predictor.backend_name], 1)
        yield from (depth, flight, info)


__all__ = ["STAGES", "Metrics"]
