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
from components.base.component import InputSpec
from components.pusher import executor


class Pusher(BaseComponent):
    SPEC = ComponentSpec(
        inputs={
            "model": InputSpec(Model),
            "model_blessing": InputSpec(ModelBlessing),
            "infra_blessing": InputSpec(InfraBlessing, optional=True),
        },
        outputs={"pushed_model": PushedModel},
        parameters={
            "serving_dir": Parameter(str),
            "model_name": Parameter(str),
            "keep_versions": Parameter(int, 5),
        },
    )
    EXECUTOR = executor.PusherExecutor
    # Publishing acts on the serving directory, outside the run: always check it again.
    CACHEABLE = False
