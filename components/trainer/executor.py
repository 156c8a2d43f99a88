from __future__ import annotations

import json
import os

from components.base import BaseExecutor
from components.base.functions import load_function
from components.trainer.fn_args import FnArgs


class TrainerExecutor(BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [examples] = input_dict["examples"]
        [transform_graph] = input_dict["transform_graph"]
        [model] = output_dict["model"]
        for split in (exec_properties["train_split"], exec_properties["eval_split"]):
            if split not in examples.split_names:
                raise ValueError(f"split {split!r} is not in the examples ({examples.split_names})")
        fn_args = FnArgs(
            train_files=os.path.join(examples.split_uri(exec_properties["train_split"]), "*"),
            eval_files=os.path.join(examples.split_uri(exec_properties["eval_split"]), "*"),
            transform_graph_dir=transform_graph.uri,
            model_dir=model.uri,
            config=json.loads(exec_properties["train_config"] or "{}"),
            model_name=exec_properties["model_name"],
            seconds_left=self.context.seconds_left,
        )
        load_function(exec_properties["run_fn"])(fn_args)
        if not os.path.exists(os.path.join(fn_args.serving_model_dir, "saved_model.pb")):
            raise RuntimeError(f"run_fn wrote no SavedModel to {fn_args.serving_model_dir}")
        model.set("model_name", exec_properties["model_name"])
