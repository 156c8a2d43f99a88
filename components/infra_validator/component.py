"""InfraValidator: can the exported model be loaded and answer, in a process of its own?

It loads the SavedModel in a separate Python process, sends real requests built
from raw examples through `serving_default` (`input_mapping`: signature input
-> raw feature), and writes TF Serving warmup records from those requests.
A model that fails to load or answer is not blessed, so it is not pushed.
"""

from components.base import BaseComponent, ComponentSpec, Examples, InfraBlessing, Model, Parameter
from components.base.component import InputSpec
from components.infra_validator import executor


class InfraValidator(BaseComponent):
    SPEC = ComponentSpec(
        inputs={"examples": InputSpec(Examples), "model": InputSpec(Model)},
        outputs={"blessing": InfraBlessing},
        parameters={
            "input_mapping": Parameter(
                str, doc='JSON: serving_default input -> raw feature, e.g. {"image_bytes": "image"}'
            ),
            "num_requests": Parameter(int, 8),
            "split": Parameter(str, "test"),
            "timeout_seconds": Parameter(int, 300),
        },
    )
    EXECUTOR = executor.InfraValidatorExecutor
