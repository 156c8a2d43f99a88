"""Trainer: transformed Examples + the transform graph in; a SavedModel and its training record out.

`run_fn` names the pipeline's training function (`module.path:function`),
which receives `FnArgs` (file patterns, the transform graph, where to write)
and the JSON `train_config` (the pipeline's typed training config). The
model directory holds `Format-Serving/` (the SavedModel, transform graph
embedded), `history.json`, `curves.png` and TensorBoard `logs/`.
"""

from components.base import BaseComponent, ComponentSpec, Examples, Model, Parameter, TransformGraph
from components.base.component import InputSpec
from components.trainer import executor


class Trainer(BaseComponent):
    SPEC = ComponentSpec(
        inputs={"examples": InputSpec(Examples), "transform_graph": InputSpec(TransformGraph)},
        outputs={"model": Model},
        parameters={
            "run_fn": Parameter(str, doc="module.path:function that trains and exports", user_code=True),
            "train_config": Parameter(str, "{}", "JSON of the pipeline's training config"),
            "model_name": Parameter(str),
            "train_split": Parameter(str, "train"),
            "eval_split": Parameter(str, "eval"),
        },
    )
    EXECUTOR = executor.TrainerExecutor
