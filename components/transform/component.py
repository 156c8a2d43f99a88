"""Transform: raw Examples + schema in; a tf.Transform graph and transformed Examples out.

`preprocessing_fn` names a factory `module.path:function` that takes the
JSON-decoded `preprocessing_params` and returns a tf.Transform
preprocessing_fn. Full-pass analyzers (e.g. z-scores) see the train split
only; every split is then transformed by that same graph, which the Trainer
embeds in the exported model so serving takes raw inputs.
"""

from components.base import BaseComponent, ComponentSpec, Examples, Parameter, Schema, TransformGraph
from components.base.component import ExecutorRef, InputSpec

# The keys of its inputs, outputs and parameters: the executor and the pipelines use these names.
PREPROCESSING_FN_KEY = "preprocessing_fn"
PREPROCESSING_PARAMS_KEY = "preprocessing_params"
ANALYZE_SPLIT_KEY = "analyze_split"
EXAMPLES_KEY = "examples"
SCHEMA_KEY = "schema"
TRANSFORM_GRAPH_KEY = "transform_graph"
TRANSFORMED_EXAMPLES_KEY = "transformed_examples"


class Transform(BaseComponent):
    SPEC = ComponentSpec(
        inputs={EXAMPLES_KEY: InputSpec(Examples), SCHEMA_KEY: InputSpec(Schema)},
        outputs={TRANSFORM_GRAPH_KEY: TransformGraph, TRANSFORMED_EXAMPLES_KEY: Examples},
        parameters={
            PREPROCESSING_FN_KEY: Parameter(
                str, doc="module.path:factory returning a preprocessing_fn", user_code=True
            ),
            PREPROCESSING_PARAMS_KEY: Parameter(str, "{}", "JSON object passed to the factory"),
            ANALYZE_SPLIT_KEY: Parameter(str, "train"),
        },
    )
    EXECUTOR = ExecutorRef("components.transform.executor:TransformExecutor")
