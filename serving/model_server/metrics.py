"""Prometheus metrics, named as TF Serving names its own where it has one."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS_US = (500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


# A failed request's labels are what its client wrote (any model name, signature or version): past
# this many distinct sets, failures are counted with those three labels empty, so a client sending
# random model names cannot grow the server's memory and its metrics page without bound.
MAX_FAILED_LABEL_SETS = 1000


class ServerMetrics:
    def __init__(self) -> None:
        self._children: dict[
            tuple[str, ...], tuple[Any, Any]
        ] = {}  # labelled children of successful requests, looked up once
        self._failed_label_sets: set[tuple[str, ...]] = set()
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_count = Counter(
            ":tensorflow:serving:request_count",
            "Requests by model, version, signature, API and final status.",
            ["model_name", "version", "signature", "API", "entrypoint", "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "End-to-end request latency in microseconds, by model, API and entrypoint.",
            ["model_name", "API", "entrypoint"],
            buckets=LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Rows per model call made by the batch scheduler (after padding).",
            ["model_name", "signature"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.padding_size = Histogram(
            ":tensorflow:serving:batching_session:padding_size",
            "Rows of padding added to reach an allowed batch size.",
            ["model_name", "signature"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.load_count = Counter(
            ":tensorflow:serving:model_load_count",
            "Model version loads by model and outcome (ok / error).",
            ["model_name", "status"],
            registry=self.registry,
        )
        self.unload_count = Counter(
            ":tensorflow:serving:model_unload_count",
            "Model versions unloaded, by model.",
            ["model_name"],
            registry=self.registry,
        )
        self.load_latency = Histogram(
            ":tensorflow:serving:model_load_latency",
            "Seconds to load and warm up a model version.",
            ["model_name"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=self.registry,
        )

    def request_done(
        self, model: str, version: str, signature: str, api: str, entrypoint: str, status: str, latency_us: float
    ) -> None:
        """One finished inference request: its count by outcome and its latency."""
        key = (model, version, signature, api, entrypoint, status)
        children = self._children.get(key)
        if children is None:
            if status != "OK" and key not in self._failed_label_sets:
                if len(self._failed_label_sets) < MAX_FAILED_LABEL_SETS:
                    self._failed_label_sets.add(key)
                else:
                    model = version = signature = ""
                    key = (model, version, signature, api, entrypoint, status)
            children = (self.request_count.labels(*key), self.request_latency.labels(model, api, entrypoint))
            if status == "OK":  # names from failed requests (unknown models) are not kept twice
                self._children[key] = children
        children[0].inc()
        children[1].observe(latency_us)
