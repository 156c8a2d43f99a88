"""Pusher: a blessed model in; a new integer version under `<serving_dir>/<model_name>/` out.

Only a model blessed by the Evaluator (and by the InfraValidator, when
wired) is pushed. The version directory is written beside the target and
renamed into place, so a server polling the base path never sees half a
model; an existing version is never overwritten; the newest `keep_versions`
versions are kept; `<serving_dir>/models.config` (TF Serving's
ModelServerConfig text format) lists every model there. Pushing a model that
is already published (same SavedModel) reports that version instead.
"""

from components.base import BaseComponent, ComponentSpec, InfraBlessing, Model, ModelBlessing, Parameter, PushedModel
from components.base.component import ExecutorRef, InputSpec, at_least

# The keys of its inputs, outputs and parameters: the executor and the pipelines use these names.
MODEL_KEY = "model"
MODEL_BLESSING_KEY = "model_blessing"
INFRA_BLESSING_KEY = "infra_blessing"
SERVING_DIR_KEY = "serving_dir"
MODEL_NAME_KEY = "model_name"
KEEP_VERSIONS_KEY = "keep_versions"
PUSHED_MODEL_KEY = "pushed_model"


class Pusher(BaseComponent):
    SPEC = ComponentSpec(
        inputs={
            MODEL_KEY: InputSpec(Model),
            MODEL_BLESSING_KEY: InputSpec(ModelBlessing),
            INFRA_BLESSING_KEY: InputSpec(InfraBlessing, optional=True),
        },
        outputs={PUSHED_MODEL_KEY: PushedModel},
        parameters={
            SERVING_DIR_KEY: Parameter(str),
            MODEL_NAME_KEY: Parameter(str),
            KEEP_VERSIONS_KEY: Parameter(int, 5, "the newest versions kept (0: every version)", check=at_least(0)),
        },
    )
    EXECUTOR = ExecutorRef("components.pusher.executor:PusherExecutor")
    # Publishing acts on the serving directory, outside the run: always check it again.
    CACHEABLE = False
