"""Trainer: transformed Examples + the transform graph in; a SavedModel and its training record out.

`run_fn` names the pipeline's training function (`module.path:function`),
which receives `FnArgs` (file patterns, the transform graph, where to write)
and the JSON `train_config` (the pipeline's typed training config). The
model directory holds `Format-Serving/` (the SavedModel, transform graph
embedded), `history.json`, `curves.png` and TensorBoard `logs/`.
"""

from components.base import BaseComponent, ComponentSpec, Examples, Model, Parameter, TransformGraph
from components.base.component import ExecutorRef, InputSpec

# The keys of its inputs, outputs and parameters: the executor and the pipelines use these names.
RUN_FN_KEY = "run_fn"
TRAIN_CONFIG_KEY = "train_config"
MODEL_NAME_KEY = "model_name"
TRAIN_SPLIT_KEY = "train_split"
EVAL_SPLIT_KEY = "eval_split"
EXAMPLES_KEY = "examples"
TRANSFORM_GRAPH_KEY = "transform_graph"
MODEL_KEY = "model"


class Trainer(BaseComponent):
    SPEC = ComponentSpec(
        inputs={EXAMPLES_KEY: InputSpec(Examples), TRANSFORM_GRAPH_KEY: InputSpec(TransformGraph)},
        outputs={MODEL_KEY: Model},
        parameters={
            RUN_FN_KEY: Parameter(str, doc="module.path:function that trains and exports", user_code=True),
            TRAIN_CONFIG_KEY: Parameter(str, "{}", "JSON of the pipeline's training config"),
            MODEL_NAME_KEY: Parameter(str),
            TRAIN_SPLIT_KEY: Parameter(str, "train"),
            EVAL_SPLIT_KEY: Parameter(str, "eval"),
        },
    )
    EXECUTOR = ExecutorRef("components.trainer.executor:TrainerExecutor")
