"""A self-contained HTML view of TFDV statistics (no scripts, no network).

TFDV's own Facets view loads its code from the internet; this page opens in
any browser offline and is what the demo frontend shows.
"""

from __future__ import annotations

import html
import math

from tensorflow_metadata.proto.v0 import statistics_pb2

from components.statistics_gen.image_stats import (
    ENCODED,
    HEIGHT,
    INTENSITY,
    WIDTH,
    image_histograms,
    undecodable,
)

BINARY_VALUE = "__BYTES_VALUE__"  # what TFDV reports as a top value of bytes it cannot show
_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:0 0 2rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right;vertical-align:top}
th:first-child,td:first-child,td.text{text-align:left}
caption{text-align:left;font-weight:bold;padding:.4rem 0}
.bar{display:inline-block;background:#4a78c2;height:.7rem;margin-right:1px;vertical-align:bottom}
.warn{color:#b00}
tr.anomaly td{background:#fde8e8}
"""


def _fmt(value: float) -> str:
    if not math.isfinite(value):  # an inf in the data makes the mean inf and the std dev nan
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}"


def _printable(raw: str) -> str:
    text = raw if len(raw) <= 40 else raw[:37] + "..."
    if any(not ch.isprintable() for ch in text):
        return f"&lt;{len(raw)} bytes&gt;"
    return html.escape(text)


def _tick(raw: str) -> str:
    """A value as a chart's tick label: 12 characters at most, control characters (a NUL in a CSV cell)
    written as escapes, which no font lacks a glyph for."""
    text = raw[:12]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _histogram(hist) -> str:
    counts = [b.sample_count for b in hist.buckets]
    if not counts or max(counts) <= 0:
        return ""
    top = max(counts)
    bars = "".join(
        f'<span class="bar" style="height:{max(1, round(24 * c / top))}px;width:6px" '
        f'title="{_fmt(b.low_value)}..{_fmt(b.high_value)}: {_fmt(c)}"></span>'
        for b, c in zip(hist.buckets, counts)
    )
    return f'<div aria-label="histogram">{bars}</div>'


def _missing(common, total: float) -> str:
    missing = common.num_missing
    share = missing / total if total else 0.0
    cls = ' class="warn"' if missing else ""
    return f"<td{cls}>{_fmt(missing)} ({share:.1%})</td>"


def _image_summary(feature) -> str:
    """'; 28x28 .. 40x60 pixels, mean intensity 33' for an image feature; '' for others."""
    hists = image_histograms(feature)
    if not hists:
        return ""

    def span(key: str) -> str:
        buckets = [b for b in hists[key].buckets if b.sample_count]
        return f"{_fmt(buckets[0].low_value)}..{_fmt(buckets[-1].high_value)}" if buckets else "?"

    total = sum(b.sample_count for b in hists[INTENSITY].buckets)
    mean = sum((b.low_value + b.high_value) / 2 * b.sample_count for b in hists[INTENSITY].buckets) / (total or 1)
    bad = undecodable(feature)
    warn = f"; <span class='warn'>{_fmt(bad)} not decodable as images</span>" if bad else ""
    return f"; width {span(WIDTH)}, height {span(HEIGHT)} pixels; mean intensity about {mean:.0f}{warn}"


def _dataset_tables(dataset, flagged: dict[str, str] | None = None) -> str:
    """The split's numeric and categorical tables; features in `flagged` (name: the anomaly's short
    description) are marked."""
    flagged = flagged or {}
    total = float(dataset.num_examples)
    numeric_rows, string_rows = [], []
    for feature in dataset.features:
        raw_name = ".".join(feature.path.step) or feature.name
        name = html.escape(raw_name)
        row = "<tr>"
        if raw_name in flagged:
            row = "<tr class='anomaly'>"
            name += f" <span class='warn'>&#9888; {html.escape(flagged[raw_name])}</span>"
        if feature.HasField("num_stats"):
            s = feature.num_stats
            hist = next((h for h in s.histograms if h.type == h.STANDARD), None)
            numeric_rows.append(
                f"{row}<td>{name}</td><td>{_fmt(s.common_stats.num_non_missing)}</td>{_missing(s.common_stats, total)}"
                f"<td>{_fmt(s.mean)}</td><td>{_fmt(s.std_dev)}</td><td>{_fmt(s.num_zeros)}</td>"
                f"<td>{_fmt(s.min)}</td><td>{_fmt(s.median)}</td><td>{_fmt(s.max)}</td>"
                f"<td>{_histogram(hist) if hist else ''}</td></tr>"
            )
        elif feature.HasField("string_stats") or feature.HasField("bytes_stats"):
            if feature.HasField("string_stats"):
                s = feature.string_stats
                top = ", ".join(f"{_printable(v.value)} ({_fmt(v.frequency)})" for v in s.top_values[:5])
                if any(v.value == BINARY_VALUE for v in s.top_values):  # TFDV's stand-in for undecodable bytes
                    top = f"binary values (images): {_fmt(s.avg_length)} bytes on average"
                top += _image_summary(feature)
                unique, avg_len, common = s.unique, s.avg_length, s.common_stats
            else:
                s = feature.bytes_stats
                top, unique, avg_len, common = "", s.unique, s.avg_num_bytes, s.common_stats
            string_rows.append(
                f"{row}<td>{name}</td><td>{_fmt(common.num_non_missing)}</td>{_missing(common, total)}"
                f"<td>{_fmt(unique)}</td><td>{_fmt(avg_len)}</td><td class='text'>{top}</td></tr>"
            )
    parts = []
    if numeric_rows:
        parts.append(
            "<table><caption>Numeric features</caption><tr><th>feature</th><th>count</th><th>missing</th>"
            "<th>mean</th><th>std dev</th><th>zeros</th><th>min</th><th>median</th><th>max</th><th>histogram</th></tr>"
            + "".join(numeric_rows)
            + "</table>"
        )
    if string_rows:
        parts.append(
            "<table><caption>Categorical and bytes features</caption><tr><th>feature</th><th>count</th>"
            "<th>missing</th><th>unique</th><th>avg length</th><th>top values</th></tr>"
            + "".join(string_rows)
            + "</table>"
        )
    return "".join(parts)


def _feature_stats(by_split) -> dict[str, dict[str, statistics_pb2.FeatureNameStatistics]]:
    """{feature: {split: its statistics}} over the first dataset of every split."""
    found: dict[str, dict] = {}
    for split, stats_list in by_split.items():
        for feature in stats_list.datasets[0].features if stats_list.datasets else []:
            found.setdefault(".".join(feature.path.step) or feature.name, {})[split] = feature
    return found


def _figure_html(fig, alt: str) -> str:
    import base64
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"></figure>'


_IMAGE_PANELS = (
    (WIDTH, "width (pixels)"),
    (HEIGHT, "height (pixels)"),
    (INTENSITY, "mean intensity (0 black, 255 white)"),
    (ENCODED, "encoded size (bytes)"),
)


def _share_bars(ax, hist, label: str, offset: float, width: float) -> None:
    """One split's histogram as bars of its share per bucket; single-value buckets (every size seen
    once) side by side, ranges as steps."""
    total = sum(b.sample_count for b in hist.buckets)
    if not total:
        return
    if all(b.low_value == b.high_value for b in hist.buckets):
        ax.bar(
            [i + offset for i in range(len(hist.buckets))],
            [b.sample_count / total for b in hist.buckets],
            width=width,
            label=label,
        )
        ax.set_xticks(range(len(hist.buckets)), [_fmt(b.low_value) for b in hist.buckets], fontsize=7)
    else:
        edges = [b.low_value for b in hist.buckets] + [hist.buckets[-1].high_value]
        ax.stairs([b.sample_count / total for b in hist.buckets], edges, label=label, linewidth=1.5)


def _image_figure(plt, name: str, per_split) -> str:
    """An image feature: width, height, mean intensity and encoded size, every split on each."""
    fig, axes = plt.subplots(1, 4, figsize=(13, 2.6))
    hists = {split: image_histograms(f) for split, f in per_split.items()}
    for ax, (key, title) in zip(axes, _IMAGE_PANELS):
        splits = [s for s in hists if key in hists[s]]
        # Exact sizes drawn as bars side by side need one shared set of buckets; splits that saw
        # different sizes are drawn as steps over the union instead.
        same = len({tuple((b.low_value, b.high_value) for b in hists[s][key].buckets) for s in splits}) == 1
        width = 0.8 / max(1, len(splits))
        for i, split in enumerate(splits):
            hist = hists[split][key]
            if not same and all(b.low_value == b.high_value for b in hist.buckets):
                total = sum(b.sample_count for b in hist.buckets) or 1
                ax.plot(
                    [b.low_value for b in hist.buckets],
                    [b.sample_count / total for b in hist.buckets],
                    marker="o",
                    linestyle="",
                    label=split,
                )
            else:
                _share_bars(ax, hist, split, i * width - 0.4 + width / 2, width)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of the split")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{name}: images in every split", fontsize=10)
    fig.tight_layout()
    try:
        return _figure_html(fig, f"{name}: image width, height, intensity and size per split")
    finally:
        plt.close(fig)


def _steps(hist: statistics_pb2.Histogram) -> tuple[list[float], list[float]] | None:
    """A histogram's share of the split per bucket and its edges, for `ax.stairs`; None when there is
    nothing to draw: no samples, or edges that are not finite and rising (a feature whose every value
    is infinite gets one bucket from inf to -inf from TFDV; drawing it failed the whole report)."""
    total = sum(b.sample_count for b in hist.buckets)
    if not total:
        return None
    edges = [b.low_value for b in hist.buckets] + [hist.buckets[-1].high_value]
    if not all(math.isfinite(e) for e in edges) or any(a > b for a, b in zip(edges, edges[1:])):
        return None
    return [b.sample_count / total for b in hist.buckets], edges


def split_charts(by_split: dict[str, statistics_pb2.DatasetFeatureStatisticsList]) -> str:
    """One chart per feature with every split on it: numeric features as histograms (share of the
    split per bucket, so splits of any size compare), categorical ones as the share of their most
    frequent values; what differs between train and eval shows at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    for name, per_split in _feature_stats(by_split).items():
        if any(image_histograms(f) for f in per_split.values()):
            figures.append(_image_figure(plt, name, per_split))
            continue
        fig, ax = plt.subplots(figsize=(6.5, 2.6))
        drawn = False
        numeric = [f for f in per_split.values() if f.HasField("num_stats")]
        if numeric:
            for split, feature in per_split.items():
                hist = next((h for h in feature.num_stats.histograms if h.type == h.STANDARD), None)
                steps = _steps(hist) if hist else None
                if steps is None:
                    continue
                ax.stairs(*steps, label=split, linewidth=1.5)
                drawn = True
            ax.set_ylabel("share of the split")
        else:
            top: dict[str, dict[str, float]] = {}
            for split, feature in per_split.items():
                s = feature.string_stats
                total = s.common_stats.num_non_missing or 1
                for value in s.top_values[:10]:
                    if value.value != BINARY_VALUE:
                        top.setdefault(value.value, {})[split] = value.frequency / total
            if top:
                values = sorted(top, key=lambda v: -max(top[v].values()))[:12]
                width = 0.8 / len(per_split)
                for i, split in enumerate(per_split):
                    ax.bar(
                        [x + i * width for x in range(len(values))],
                        [top[v].get(split, 0.0) for v in values],
                        width=width,
                        label=split,
                    )
                ax.set_xticks([x + 0.4 - width / 2 for x in range(len(values))], [_tick(v) for v in values])
                ax.set_ylabel("share of the split")
                drawn = True
        if drawn:
            ax.set_title(f"{name}: every split")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
            fig.tight_layout()
            figures.append(_figure_html(fig, f"{name}: distribution per split"))
        plt.close(fig)
    if not figures:
        return ""
    return "<section id='splits'><h2>Splits side by side</h2>" + "".join(figures) + "</section>"


def _anomaly_list(anomalies: dict[str, list[dict]]) -> str:
    items = [
        f"<li><b>{html.escape(split)}</b>: {html.escape(row['feature'])}: {html.escape(row['short_description'])}"
        f" &mdash; {html.escape(row['description'])}</li>"
        for split, rows in anomalies.items()
        for row in rows
    ]
    if not items:
        return "<section id='anomalies'><h2>Anomalies</h2><p>None: every split matches the schema.</p></section>"
    return f"<section id='anomalies'><h2 class='warn'>Anomalies</h2><ul>{''.join(items)}</ul></section>"


def statistics_html(
    by_split: dict[str, statistics_pb2.DatasetFeatureStatisticsList],
    title: str,
    drift_chart: str = "",
    anomalies: dict[str, list[dict]] | None = None,
) -> str:
    """The page; `drift_chart` names a picture beside it (drift_chart.py's) to show first;
    `anomalies` ({split: anomaly_rows}) are listed on top and their features marked in the tables."""
    sections = [split_charts(by_split)]
    if anomalies is not None:
        sections.insert(0, _anomaly_list(anomalies))
    if drift_chart:
        sections.insert(
            0,
            "<section id='drift'><h2>Drift and skew the schema checks</h2>"
            f"<img src='{html.escape(drift_chart)}' alt='drift and skew against their thresholds'></section>",
        )
    flagged = {split: {r["feature"]: r["short_description"] for r in rows} for split, rows in (anomalies or {}).items()}
    for split, stats_list in by_split.items():
        for dataset in stats_list.datasets:
            sections.append(
                f"<section><h2>{html.escape(split)}: {_fmt(dataset.num_examples)} examples</h2>"
                f"{_dataset_tables(dataset, flagged.get(split))}</section>"
            )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>"
    )
