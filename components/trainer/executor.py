from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
import tempfile
import time

from components.base import BaseExecutor, ExecutorContext, fileio
from components.base.functions import load_function
from components.trainer import multi_worker
from components.trainer.component import (
    EVAL_SPLIT_KEY,
    EXAMPLES_KEY,
    MODEL_KEY,
    MODEL_NAME_KEY,
    RUN_FN_KEY,
    TRAIN_CONFIG_KEY,
    TRAIN_SPLIT_KEY,
    TRANSFORM_GRAPH_KEY,
)
from components.trainer.fn_args import FnArgs


class TrainerExecutor(BaseExecutor):
    """Calls the pipeline's `run_fn` with FnArgs: where the data is, where to write, the config.

    Inputs: `examples` (transformed Examples: `train_split` and `eval_split`), `transform_graph`.
    Output: `model` (Format-Serving/ SavedModel, history.json, training_end.json, curves.png,
    TensorBoard logs/). Parameters: `run_fn`, `train_config` (JSON of the pipeline's typed
    training config; distribution=multi_worker runs it on several workers), `model_name`,
    `train_split`, `eval_split`."""

    def Do(self, input_dict, output_dict, exec_properties):
        [examples] = input_dict[EXAMPLES_KEY]
        [transform_graph] = input_dict[TRANSFORM_GRAPH_KEY]
        [model] = output_dict[MODEL_KEY]
        for split in (exec_properties[TRAIN_SPLIT_KEY], exec_properties[EVAL_SPLIT_KEY]):
            if split not in examples.split_names:
                raise ValueError(f"split {split!r} is not in the examples ({examples.split_names})")
        config = json.loads(exec_properties[TRAIN_CONFIG_KEY] or "{}")
        fn_args = FnArgs(
            train_files=examples.split_files(exec_properties[TRAIN_SPLIT_KEY]),
            eval_files=examples.split_files(exec_properties[EVAL_SPLIT_KEY]),
            transform_graph_dir=transform_graph.uri,
            model_dir=model.uri,
            config=config,
            model_name=exec_properties[MODEL_NAME_KEY],
            seconds_left=self.context.seconds_left,
        )
        if config.get("distribution") == "multi_worker":
            # One clock for every worker's time-annealed learning rate.
            fn_args = dataclasses.replace(fn_args, config={**config, "lr_start": config.get("lr_start") or time.time()})
            self._train_on_workers(fn_args, exec_properties[RUN_FN_KEY], int(config.get("workers", 2)))
        else:
            load_function(exec_properties[RUN_FN_KEY])(fn_args)
        if not fileio.exists(os.path.join(fn_args.serving_model_dir, "saved_model.pb")):
            raise RuntimeError(f"run_fn wrote no SavedModel to {fn_args.serving_model_dir}")
        model.set("model_name", exec_properties[MODEL_NAME_KEY])
        if fileio.exists(fn_args.training_end_path):  # why training stopped, for the run's summary
            end = json.loads(fileio.read_text(fn_args.training_end_path))
            model.properties.update({f"training_{k}": v for k, v in end.items() if v is not None})

    def _train_on_workers(self, fn_args: FnArgs, run_fn: str, workers: int) -> None:
        """MultiWorkerMirroredStrategy needs fresh processes: collectives are set up before any TF op."""
        # The workers' spec and logs are local files: beside the Model artifact when artifacts are local
        # (so they stay with a failed execution), else in a local temporary folder.
        if fileio.is_local(fn_args.model_dir):
            work_dir = os.path.join(os.path.dirname(fn_args.model_dir.rstrip("/")), "workers")
            os.makedirs(work_dir, exist_ok=True)
        else:
            work_dir = tempfile.mkdtemp(prefix="trainer-workers-")
        if os.environ.get("TF_CONFIG"):
            multi_worker.run_external_task(fn_args, run_fn, work_dir)
        else:
            multi_worker.run_workers(fn_args, run_fn, workers, work_dir)
        for scratch in glob.glob(os.path.join(work_dir, "trainer-*")):  # the other workers' copies
            shutil.rmtree(scratch, ignore_errors=True)


def train(inputs: dict, model, run_fn: str, config: dict, model_name: str) -> None:
    """The Trainer's executor on its own, outside a pipeline (tests, benchmarks): `inputs` as the
    runner would give them (examples, transform_graph), `model` the output artifact, splits
    train and eval."""
    TrainerExecutor(ExecutorContext(component_id="Trainer")).Do(
        inputs,
        {"model": [model]},
        {
            "run_fn": run_fn,
            "train_config": json.dumps(config),
            "model_name": model_name,
            "train_split": "train",
            "eval_split": "eval",
        },
    )
