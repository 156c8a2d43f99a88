"""pipelines/cache.py with the real components that read files: their data's content, not its
path, is in the key (an edited curated schema or CSV is never answered from the cache)."""

from __future__ import annotations

import pytest

from components.example_gen.component import CsvExampleGen, IdxExampleGen, ImageExampleGen
from components.schema_gen.component import SchemaGen
from components.statistics_gen.component import StatisticsGen
from pipelines.cache import cache_key


def schema_gen(path):
    statistics = StatisticsGen(examples=CsvExampleGen(input_path="unused").outputs["examples"])
    return SchemaGen(statistics=statistics.outputs["statistics"], schema_path=str(path))


@pytest.mark.parametrize(
    "make",
    [
        schema_gen,
        lambda path: CsvExampleGen(input_path="/data/prices.csv", schema_path=str(path)),
        lambda path: CsvExampleGen(input_path=str(path)),
        lambda path: ImageExampleGen(input_path=str(path.parent)),
        lambda path: IdxExampleGen(input_path=str(path.parent)),
    ],
    ids=["SchemaGen.schema_path", "CsvExampleGen.schema_path", "CsvExampleGen.input_path", "ImageExampleGen", "Idx"],
)
def test_a_components_data_enters_its_key_by_content(make, tmp_path):
    here, there = tmp_path / "checkout" / "data.pbtxt", tmp_path / "clone" / "data.pbtxt"
    for path in (here, there):
        path.parent.mkdir()
        path.write_text('feature { name: "price" type: FLOAT }\n')
    before = cache_key(make(here), {})
    assert cache_key(make(there), {}).value == before.value  # the same data in another checkout
    assert str(here.parent) in before.parameters  # recorded where it was read
    with open(here, "a") as f:
        f.write("\n# edited\n")
    assert cache_key(make(here), {}).value != before.value
