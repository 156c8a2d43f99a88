from __future__ import annotations

import os

from components.base import BaseExecutor, fileio
from components.pusher.component import (
    INFRA_BLESSING_KEY,
    KEEP_VERSIONS_KEY,
    MODEL_BLESSING_KEY,
    MODEL_KEY,
    MODEL_NAME_KEY,
    PUSHED_MODEL_KEY,
    SERVING_DIR_KEY,
)
from components.pusher.publish import pinned_versions, prune, publish, published_version_of, write_models_config
from components.trainer.fn_args import SERVING_DIR
from serving import layout


class PusherExecutor(BaseExecutor):
    """Publishes a blessed model as the next version of `<serving_dir>/<model_name>/` and rewrites models.config.

    Inputs: `model`, `model_blessing` (the Evaluator's) and `infra_blessing` (the InfraValidator's;
    both must bless). Output: `pushed_model` (properties `pushed`, `pushed_version`,
    `pushed_destination`, or the reason nothing was pushed). Parameters: `serving_dir`,
    `model_name`, `keep_versions` (older versions are removed, never the served one). The copy
    is made aside and renamed into place: a version folder is complete or absent."""

    def Do(self, input_dict, output_dict, exec_properties):
        [model] = input_dict[MODEL_KEY]
        [blessing] = input_dict[MODEL_BLESSING_KEY]
        infra = (input_dict.get(INFRA_BLESSING_KEY) or [None])[0]
        [pushed] = output_dict[PUSHED_MODEL_KEY]
        pushed.set("pushed", 0)
        if not blessing.get("blessed"):
            pushed.properties["reason"] = f"not blessed by the Evaluator: {blessing.get('reason', '')}"
            return
        if infra is not None and not infra.get("blessed"):
            pushed.properties["reason"] = f"not blessed by the InfraValidator: {infra.get('reason', '')}"
            return
        serving_dir = os.path.abspath(exec_properties[SERVING_DIR_KEY])
        base_path = os.path.join(serving_dir, exec_properties[MODEL_NAME_KEY])
        extra = {}
        if infra is not None and fileio.exists(os.path.join(infra.uri, layout.WARMUP_FILE)):
            extra[layout.WARMUP_PATH] = os.path.join(infra.uri, layout.WARMUP_FILE)
        saved_model = os.path.join(model.uri, SERVING_DIR)
        existing = published_version_of(saved_model, base_path)
        if existing is not None:
            version, removed = existing, []
            pushed.properties["reason"] = f"already published as version {existing}"
        else:
            version = publish(saved_model, base_path, extra)
            pinned = pinned_versions(serving_dir, exec_properties[MODEL_NAME_KEY])
            removed = prune(base_path, exec_properties[KEEP_VERSIONS_KEY], pinned)
        config_path = write_models_config(serving_dir)
        pushed.set("pushed", 1)
        pushed.set("pushed_version", version)
        pushed.set("pushed_destination", os.path.join(base_path, str(version)))
        pushed.properties["models_config"] = config_path
        if removed:
            pushed.properties["removed_versions"] = ",".join(map(str, removed))
