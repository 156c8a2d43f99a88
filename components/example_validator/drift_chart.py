"""The drift and skew comparisons a schema configures, drawn: for every compared feature and split,
the distance TFDV measured beside the threshold the schema sets (red when over it).

TFDV reports them in `Anomalies.drift_skew_info`; a list of numbers says little about how close to
its threshold a feature is, a bar beside a tick says it at a glance.
"""

from __future__ import annotations

import dataclasses

from tensorflow_metadata.proto.v0 import anomalies_pb2

DRIFT_CHART = "drift.png"  # in the ExampleAnomalies artifact and in `validate --report`'s folder
_MEASURE = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L-infinity distance",
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "Jensen-Shannon divergence",
    anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE: "normalized absolute difference",
}


@dataclasses.dataclass(frozen=True)
class Comparison:
    feature: str
    split: str
    kind: str  # "drift" (against the baseline data) or "skew" (against serving data)
    measure: str
    value: float
    threshold: float

    @property
    def over(self) -> bool:
        return self.value > self.threshold


def comparisons(by_split: dict[str, anomalies_pb2.Anomalies]) -> list[Comparison]:
    found = []
    for split, anomalies in by_split.items():
        for info in anomalies.drift_skew_info:
            feature = ".".join(info.path.step)
            for kind, measurements in (("drift", info.drift_measurements), ("skew", info.skew_measurements)):
                for m in measurements:
                    found.append(
                        Comparison(feature, split, kind, _MEASURE.get(m.type, "distance"), m.value, m.threshold)
                    )
    return found


def draw_drift(by_split: dict[str, anomalies_pb2.Anomalies], path: str, baseline: str = "") -> bool:
    """Writes the chart to `path` (any fileio path); False, and nothing written, when the schema
    configures no comparison."""
    found = comparisons(by_split)
    if not found:
        return False
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from components.base import fileio

    fig, ax = plt.subplots(figsize=(8.5, 1.0 + 0.45 * len(found)))
    labels = [f"{c.feature} · {c.split} ({c.kind}, {c.measure})" for c in found]
    rows = range(len(found))
    ax.barh(rows, [c.value for c in found], color=["#c0392b" if c.over else "#4a78c2" for c in found], height=0.5)
    ax.scatter([c.threshold for c in found], rows, marker="|", s=400, color="black")
    for row, c in zip(rows, found):
        ax.annotate(f"{c.value:.3f}", (c.value, row), xytext=(4, -3), textcoords="offset points", fontsize=8)
    ax.set_yticks(list(rows), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(max(c.value for c in found), max(c.threshold for c in found)) * 1.25 or 1)
    against = f" against {baseline}" if baseline else ""
    ax.set_title(f"Drift and skew{against}: measured (bar; red when over the schema's threshold |)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    with fileio.open(path, "wb") as f:
        f.write(buffer.getvalue())
    return True
