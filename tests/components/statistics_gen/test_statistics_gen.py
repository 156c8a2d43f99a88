"""StatisticsGen on real TFDV, through the runner: statistics per split and their HTML view."""

from __future__ import annotations

import base64
import os
import re

from components.statistics_gen.stats_io import HTML_FILE, load_split_statistics
from pipelines.house_price import SCHEMA_PATH as HOUSE_SCHEMA
from tests.components.helpers import ROWS, data_components, run_components, write_csv


def test_statistics_per_split_and_an_html_view(tmp_path, house_upstream):
    components = data_components(write_csv(tmp_path / "h.csv", ROWS), HOUSE_SCHEMA)
    result = run_components(tmp_path, components, seed_store=house_upstream["clean"])
    # The session's upstream run stands in (the same rows, another CSV); what follows ran here.
    assert result.components["StatisticsGen"].cached and not result.components["SchemaGen"].cached
    [statistics] = result.outputs("StatisticsGen", "statistics")
    assert statistics.split_names == ["train", "eval"]
    total = 0
    for split in statistics.split_names:
        stats = load_split_statistics(statistics, split)
        total += stats.datasets[0].num_examples
        names = {f.path.step[0] for f in stats.datasets[0].features}
        assert names == {"area", "bedrooms", "price"}
    assert total == len(ROWS)
    page = open(os.path.join(statistics.uri, HTML_FILE)).read()
    assert "<table" in page and "bedrooms" in page and "<script" not in page
    # Splits side by side: one chart per feature, inline (the page stays one offline file).
    charts = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="(\w+): distribution per split"', page)
    assert sorted(name for _, name in charts) == ["area", "bedrooms", "price"]
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data, _ in charts)
