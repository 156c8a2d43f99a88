"""SchemaGen on real TFDV, through the runner: inferred or curated, and a curated one edited in place."""

from __future__ import annotations

import pytest
import tensorflow_data_validation as tfdv

from components.schema_gen.schema_io import load_schema
from pipelines.house_price import SCHEMA_PATH as HOUSE_SCHEMA
from pipelines.runner import PipelineStopped
from tests.components.helpers import ROWS, data_components, run_components, write_csv


def test_schema_gen_infers_from_train_when_no_curated_schema(tmp_path, house_upstream):
    components = data_components(write_csv(tmp_path / "h.csv", ROWS), None, stop=False)
    result = run_components(tmp_path, components, seed_store=house_upstream["clean"])
    [schema_artifact] = result.outputs("SchemaGen", "schema")
    schema = load_schema(schema_artifact.uri)
    assert schema_artifact.get("source") == "inferred"
    assert {f.name for f in schema.feature} == {"area", "bedrooms", "price"}
    assert tfdv.get_feature(schema, "bedrooms").type == 2  # INT


def test_schema_gen_uses_the_curated_schema(tmp_path, house_upstream):
    components = data_components(write_csv(tmp_path / "h.csv", ROWS), HOUSE_SCHEMA)
    result = run_components(tmp_path, components, seed_store=house_upstream["clean"])
    [schema_artifact] = result.outputs("SchemaGen", "schema")
    assert schema_artifact.get("source").startswith("curated:")
    assert load_schema(schema_artifact.uri) == load_schema(HOUSE_SCHEMA)


def test_a_curated_schema_edited_in_place_is_read_again_not_taken_from_the_cache(tmp_path, house_upstream):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(open(HOUSE_SCHEMA).read())
    csv = write_csv(tmp_path / "h.csv", ROWS)
    first = run_components(tmp_path, data_components(csv, str(schema)), seed_store=house_upstream["clean"])
    [anomalies] = first.outputs("ExampleValidator", "anomalies")
    assert anomalies.get("num_anomalies") == 0
    # The same path, a narrower domain: the 4-bedroom rows are now anomalies.
    schema.write_text(schema.read_text().replace("int_domain { min: 1 max: 20 }", "int_domain { min: 1 max: 3 }"))
    with pytest.raises(PipelineStopped, match="bedrooms") as stopped:
        run_components(tmp_path, data_components(csv, str(schema)))
    assert "data anomalies" in str(stopped.value)
