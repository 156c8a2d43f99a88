"""StatisticsGen, SchemaGen and ExampleValidator on real TFDV, through the runner."""

from __future__ import annotations

import base64
import os
import re

import pytest
import tensorflow_data_validation as tfdv

from components.example_gen import CsvExampleGen
from components.example_validator.anomalies_io import read_rows
from components.schema_gen.schema_io import load_schema
from components.statistics_gen.stats_io import HTML_FILE, load_split_statistics
from pipelines.house_price import SCHEMA_PATH as HOUSE_SCHEMA
from pipelines.runner import PipelineStopped
from pipelines.stages import data_stages
from tests.components.helpers import run_components

ROWS = [(2104, 3, 399900), (1600, 3, 329900), (2400, 3, 369000), (1416, 2, 232000), (3000, 4, 539900)] * 8


HOUSE_PREPROCESSING = "pipelines.house_price.preprocessing:make_preprocessing_fn"


def write_csv(path, rows, header="area,bedrooms,price"):
    with open(path, "w") as f:
        if header:
            f.write(header + "\n")
        for row in rows:
            f.write(",".join(str(v) for v in row) + "\n")
    return str(path)


def data_components(csv_path, schema_path=None, stop=True):
    """ExampleGen, then StatisticsGen -> SchemaGen -> ExampleValidator wired as every pipeline wires them."""
    gen = CsvExampleGen(input_path=csv_path, schema_path=HOUSE_SCHEMA, splits="train:1,eval:1")
    stats, schema, validator, _transform = data_stages(gen, schema_path, stop, HOUSE_PREPROCESSING)
    return [gen, stats, schema, validator]


def test_statistics_per_split_and_an_html_view(tmp_path):
    result = run_components(tmp_path, data_components(write_csv(tmp_path / "h.csv", ROWS), HOUSE_SCHEMA))
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


def test_schema_gen_infers_from_train_when_no_curated_schema(tmp_path):
    result = run_components(tmp_path, data_components(write_csv(tmp_path / "h.csv", ROWS), None, stop=False))
    [schema_artifact] = result.outputs("SchemaGen", "schema")
    schema = load_schema(schema_artifact.uri)
    assert schema_artifact.get("source") == "inferred"
    assert {f.name for f in schema.feature} == {"area", "bedrooms", "price"}
    assert tfdv.get_feature(schema, "bedrooms").type == 2  # INT


def test_schema_gen_uses_the_curated_schema(tmp_path):
    result = run_components(tmp_path, data_components(write_csv(tmp_path / "h.csv", ROWS), HOUSE_SCHEMA))
    [schema_artifact] = result.outputs("SchemaGen", "schema")
    assert schema_artifact.get("source").startswith("curated:")
    assert load_schema(schema_artifact.uri) == load_schema(HOUSE_SCHEMA)


def test_a_curated_schema_edited_in_place_is_read_again_not_taken_from_the_cache(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(open(HOUSE_SCHEMA).read())
    csv = write_csv(tmp_path / "h.csv", ROWS)
    first = run_components(tmp_path, data_components(csv, str(schema)))
    [anomalies] = first.outputs("ExampleValidator", "anomalies")
    assert anomalies.get("num_anomalies") == 0
    # The same path, a narrower domain: the 4-bedroom rows are now anomalies.
    schema.write_text(schema.read_text().replace("int_domain { min: 1 max: 20 }", "int_domain { min: 1 max: 3 }"))
    with pytest.raises(PipelineStopped, match="bedrooms") as stopped:
        run_components(tmp_path, data_components(csv, str(schema)))
    assert "data anomalies" in str(stopped.value)


def test_clean_data_passes_the_validator(tmp_path):
    result = run_components(tmp_path, data_components(write_csv(tmp_path / "h.csv", ROWS), HOUSE_SCHEMA))
    [anomalies] = result.outputs("ExampleValidator", "anomalies")
    assert anomalies.get("num_anomalies") == 0
    assert "None: every split matches the schema." in open(os.path.join(anomalies.uri, "statistics.html")).read()


def test_anomalies_stop_the_run_with_a_readable_list(tmp_path):
    bad = ROWS + [(1800, 25, 300000)] * 10  # 25 bedrooms: outside 1..20
    with pytest.raises(PipelineStopped) as stopped:
        run_components(tmp_path, data_components(write_csv(tmp_path / "h.csv", bad), HOUSE_SCHEMA))
    message = str(stopped.value)
    assert "bedrooms" in message and "data anomalies" in message


def test_stop_on_anomalies_false_warns_and_continues(tmp_path, capsys):
    bad = ROWS + [(1800, 25, 300000)] * 10
    result = run_components(tmp_path, data_components(write_csv(tmp_path / "h.csv", bad), HOUSE_SCHEMA, stop=False))
    [anomalies] = result.outputs("ExampleValidator", "anomalies")
    assert anomalies.get("num_anomalies") >= 1
    rows = [r for split in anomalies.split_names for r in read_rows(anomalies.split_uri(split))]
    assert any(r["feature"] == "bedrooms" for r in rows)
    assert "warning: data anomalies" in capsys.readouterr().out
    # The statistics page again, with the anomalies listed on top and the feature's rows marked.
    page = open(os.path.join(anomalies.uri, "statistics.html")).read()
    assert "<h2 class='warn'>Anomalies</h2>" in page
    assert page.count("<tr class='anomaly'><td>bedrooms <span class='warn'>") == len(
        [r for r in rows if r["feature"] == "bedrooms"]
    )
    assert "<tr class='anomaly'><td>area" not in page


def test_a_rerun_of_an_anomalous_dataset_stops_again_from_the_cache(tmp_path):
    bad = write_csv(tmp_path / "h.csv", ROWS + [(1800, 25, 300000)] * 10)
    with pytest.raises(PipelineStopped):
        run_components(tmp_path, data_components(bad, HOUSE_SCHEMA))
    with pytest.raises(PipelineStopped):
        run_components(tmp_path, data_components(bad, HOUSE_SCHEMA))
