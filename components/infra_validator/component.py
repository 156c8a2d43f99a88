"""InfraValidator: can the exported model be loaded and answer, in a process of its own?

It loads the SavedModel in a separate Python process, sends real requests built
from raw examples through `serving_default` (`input_mapping`: signature input
-> raw feature), and writes TF Serving warmup records from those requests.
A model that fails to load or answer is not blessed, so it is not pushed.
"""

from components.base import BaseComponent, ComponentSpec, Examples, InfraBlessing, Model, Parameter
from components.base.component import ExecutorRef, InputSpec, at_least

# The keys of its inputs, outputs and parameters: the executor and the pipelines use these names.
INPUT_MAPPING_KEY = "input_mapping"
NUM_REQUESTS_KEY = "num_requests"
SPLIT_KEY = "split"
TIMEOUT_SECONDS_KEY = "timeout_seconds"
EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
BLESSING_KEY = "blessing"


class InfraValidator(BaseComponent):
    SPEC = ComponentSpec(
        inputs={EXAMPLES_KEY: InputSpec(Examples), MODEL_KEY: InputSpec(Model)},
        outputs={BLESSING_KEY: InfraBlessing},
        parameters={
            INPUT_MAPPING_KEY: Parameter(
                str, doc='JSON: serving_default input -> raw feature, e.g. {"image_bytes": "image"}'
            ),
            NUM_REQUESTS_KEY: Parameter(int, 8, check=at_least(1)),
            SPLIT_KEY: Parameter(str, "test"),
            TIMEOUT_SECONDS_KEY: Parameter(int, 300, check=at_least(1)),
        },
    )
    EXECUTOR = ExecutorRef("components.infra_validator.executor:InfraValidatorExecutor")
