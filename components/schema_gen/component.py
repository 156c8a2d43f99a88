"""SchemaGen: statistics in, schema out.

The schema is the curated `schema_path` when one is given (checked in under
schemas/<pipeline>/), else inferred by TFDV from the train split's statistics.
"""

from components.base import BaseComponent, ComponentSpec, ExampleStatistics, Parameter, Schema
from components.base.component import ExecutorRef, InputSpec

# The keys of its inputs, outputs and parameters: the executor and the pipelines use these names.
SCHEMA_PATH_KEY = "schema_path"
INFER_FEATURE_SHAPE_KEY = "infer_feature_shape"
STATISTICS_KEY = "statistics"
SCHEMA_KEY = "schema"


class SchemaGen(BaseComponent):
    SPEC = ComponentSpec(
        inputs={STATISTICS_KEY: InputSpec(ExampleStatistics)},
        outputs={SCHEMA_KEY: Schema},
        parameters={
            SCHEMA_PATH_KEY: Parameter(str, None, "curated schema.pbtxt; inferred when unset", data_path=True),
            INFER_FEATURE_SHAPE_KEY: Parameter(bool, True),
        },
    )
    EXECUTOR = ExecutorRef("components.schema_gen.executor:SchemaGenExecutor")
