"""Transform: raw Examples + schema in; a tf.Transform graph and transformed Examples out.

`preprocessing_fn` names a factory `module.path:function` that takes the
JSON-decoded `preprocessing_params` and returns a tf.Transform
preprocessing_fn. Full-pass analyzers (e.g. z-scores) see the train split
only; every split is then transformed by that same graph, which the Trainer
embeds in the exported model so serving takes raw inputs.
"""

from components.base import BaseComponent, ComponentSpec, Examples, Parameter, Schema, TransformGraph
from components.base.component import InputSpec
from components.transform import executor


class Transform(BaseComponent):
    SPEC = ComponentSpec(
        inputs={"examples": InputSpec(Examples), "schema": InputSpec(Schema)},
        outputs={"transform_graph": TransformGraph, "transformed_examples": Examples},
        parameters={
            "preprocessing_fn": Parameter(str, doc="module.path:factory returning a preprocessing_fn", user_code=True),
            "preprocessing_params": Parameter(str, "{}", "JSON object passed to the factory"),
            "analyze_split": Parameter(str, "train"),
        },
    )
    EXECUTOR = executor.TransformExecutor
