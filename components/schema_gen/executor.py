from __future__ import annotations

import tensorflow_data_validation as tfdv

from components.base import BaseExecutor
from components.schema_gen.component import INFER_FEATURE_SHAPE_KEY, SCHEMA_KEY, SCHEMA_PATH_KEY, STATISTICS_KEY
from components.schema_gen.schema_io import load_schema, write_schema
from components.statistics_gen.stats_io import load_split_statistics

TRAIN_SPLIT = "train"


class SchemaGenExecutor(BaseExecutor):
    """The schema: the curated one at `schema_path`, or inferred from the statistics by TFDV.

    Input: `statistics`. Output: `schema` (schema.pbtxt; property `source`: curated:<path> or
    inferred). Parameters: `schema_path`, `infer_feature_shape`."""

    def Do(self, input_dict, output_dict, exec_properties):
        [statistics] = input_dict[STATISTICS_KEY]
        [schema_artifact] = output_dict[SCHEMA_KEY]
        if exec_properties[SCHEMA_PATH_KEY]:
            schema = load_schema(exec_properties[SCHEMA_PATH_KEY])
            schema_artifact.set("source", f"curated:{exec_properties['schema_path']}")
        else:
            stats = load_split_statistics(statistics, TRAIN_SPLIT)
            schema = tfdv.infer_schema(stats, infer_feature_shape=exec_properties[INFER_FEATURE_SHAPE_KEY])
            schema_artifact.set("source", "inferred")
        write_schema(schema, schema_artifact.uri)
