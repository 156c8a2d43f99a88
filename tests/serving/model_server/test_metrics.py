"""The request metrics stay bounded whatever names clients send.

A failed request is labelled with the model name, version and signature its client wrote. Before,
every distinct name made a new labelled child of the request count and of the latency histogram:
20,000 requests for random model names grew a server by 104 MiB and its metrics page to 54 MiB,
rendered in 3.4 s on the event loop (BENCHMARKS.md, issue #13)."""

from __future__ import annotations

from prometheus_client import generate_latest

from serving.model_server.metrics import MAX_FAILED_LABEL_SETS, ServerMetrics


def _count_samples(metrics: ServerMetrics) -> dict[tuple[str, ...], float]:
    [family] = [m for m in metrics.registry.collect() if m.name == ":tensorflow:serving:request_count"]
    return {
        tuple(s.labels[k] for k in ("model_name", "version", "signature", "API", "entrypoint", "status")): s.value
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_failures_under_random_names_are_counted_in_a_bounded_set_of_labels():
    metrics = ServerMetrics()
    failures = 3 * MAX_FAILED_LABEL_SETS
    for i in range(failures):
        metrics.request_done(f"random-{i}", "", f"sig-{i}", "predict", "REST", "NOT_FOUND", 100.0)
    metrics.request_done("captcha", "1", "serving_default", "predict", "GRPC", "OK", 100.0)
    counts = _count_samples(metrics)
    assert len(counts) == MAX_FAILED_LABEL_SETS + 2  # the first names, the overflow set, the OK one
    # Every failure is still counted by API, entrypoint and status; the overflow has no names.
    assert sum(v for k, v in counts.items() if k[5] == "NOT_FOUND") == failures
    assert counts[("", "", "", "predict", "REST", "NOT_FOUND")] == failures - MAX_FAILED_LABEL_SETS
    assert counts[("random-0", "", "sig-0", "predict", "REST", "NOT_FOUND")] == 1
    assert counts[("captcha", "1", "serving_default", "predict", "GRPC", "OK")] == 1
    # A name seen before the limit keeps its own label after it.
    metrics.request_done("random-0", "", "sig-0", "predict", "REST", "NOT_FOUND", 100.0)
    assert _count_samples(metrics)[("random-0", "", "sig-0", "predict", "REST", "NOT_FOUND")] == 2
    assert len(generate_latest(metrics.registry)) < 4 << 20
