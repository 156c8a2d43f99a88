"""SchemaGen: statistics in, schema out.

The schema is the curated `schema_path` when one is given (checked in under
schemas/<pipeline>/), else inferred by TFDV from the train split's statistics.
"""

from components.base import BaseComponent, ComponentSpec, ExampleStatistics, Parameter, Schema
from components.base.component import InputSpec
from components.schema_gen import executor


class SchemaGen(BaseComponent):
    SPEC = ComponentSpec(
        inputs={"statistics": InputSpec(ExampleStatistics)},
        outputs={"schema": Schema},
        parameters={
            "schema_path": Parameter(str, None, "curated schema.pbtxt; inferred when unset"),
            "infer_feature_shape": Parameter(bool, True),
        },
    )
    EXECUTOR = executor.SchemaGenExecutor
