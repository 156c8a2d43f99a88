"""ExampleValidator on real TFDV, through the runner: clean data passes, anomalies stop the run or warn."""

from __future__ import annotations

import os

import pytest

from components.example_validator.anomalies_io import read_rows
from pipelines.house_price import SCHEMA_PATH as HOUSE_SCHEMA
from pipelines.runner import PipelineStopped
from tests.components.helpers import BAD_ROWS, ROWS, data_components, run_components, write_csv


def test_clean_data_passes_the_validator(tmp_path, house_upstream):
    components = data_components(write_csv(tmp_path / "h.csv", ROWS), HOUSE_SCHEMA)
    result = run_components(tmp_path, components, seed_store=house_upstream["clean"])
    [anomalies] = result.outputs("ExampleValidator", "anomalies")
    assert anomalies.get("num_anomalies") == 0
    assert "None: every split matches the schema." in open(os.path.join(anomalies.uri, "statistics.html")).read()


def test_anomalies_stop_the_run_with_a_readable_list(tmp_path, house_upstream):
    components = data_components(write_csv(tmp_path / "h.csv", BAD_ROWS), HOUSE_SCHEMA)
    with pytest.raises(PipelineStopped) as stopped:
        run_components(tmp_path, components, seed_store=house_upstream["bad"])
    message = str(stopped.value)
    assert "bedrooms" in message and "data anomalies" in message


def test_stop_on_anomalies_false_warns_and_continues(tmp_path, capsys, house_upstream):
    components = data_components(write_csv(tmp_path / "h.csv", BAD_ROWS), HOUSE_SCHEMA, stop=False)
    result = run_components(tmp_path, components, seed_store=house_upstream["bad"])
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


def test_a_rerun_of_an_anomalous_dataset_stops_again_from_the_cache(tmp_path, house_upstream):
    bad = write_csv(tmp_path / "h.csv", BAD_ROWS)
    with pytest.raises(PipelineStopped):
        run_components(tmp_path, data_components(bad, HOUSE_SCHEMA), seed_store=house_upstream["bad"])
    with pytest.raises(PipelineStopped):
        run_components(tmp_path, data_components(bad, HOUSE_SCHEMA))
