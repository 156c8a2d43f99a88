"""ExampleValidator: statistics + schema in, anomalies out; one decision: stop or go.

Every split is validated against the schema (in `environment`, if the schema
uses environments); splits other than `baseline_split` are also compared with
it by the drift comparators configured in the schema. With anomalies, the run
stops with a readable list, unless `stop_on_anomalies` is False (a warning).
"""

from components.base import BaseComponent, ComponentSpec, ExampleAnomalies, ExampleStatistics, Parameter, Schema
from components.base.component import ExecutorRef, InputSpec

# The keys of its inputs, outputs and parameters: the executor and the pipelines use these names.
STOP_ON_ANOMALIES_KEY = "stop_on_anomalies"
ENVIRONMENT_KEY = "environment"
BASELINE_SPLIT_KEY = "baseline_split"
STATISTICS_KEY = "statistics"
SCHEMA_KEY = "schema"
ANOMALIES_KEY = "anomalies"


class ExampleValidator(BaseComponent):
    SPEC = ComponentSpec(
        inputs={STATISTICS_KEY: InputSpec(ExampleStatistics), SCHEMA_KEY: InputSpec(Schema)},
        outputs={ANOMALIES_KEY: ExampleAnomalies},
        parameters={
            STOP_ON_ANOMALIES_KEY: Parameter(bool, True),
            ENVIRONMENT_KEY: Parameter(str, None, "schema environment, e.g. TRAINING"),
            BASELINE_SPLIT_KEY: Parameter(str, "train", "drift is measured against this split"),
        },
    )
    EXECUTOR = ExecutorRef("components.example_validator.executor:ExampleValidatorExecutor")

    def gate(self, outputs):
        from components.example_validator.anomalies_io import format_rows, read_rows  # TensorFlow's file layer

        [anomalies] = outputs["anomalies"]
        found = {split: read_rows(anomalies.split_uri(split)) for split in anomalies.split_names}
        found = {split: rows for split, rows in found.items() if rows}
        if not found:
            return None
        report = "\n".join(format_rows(rows, f"split {split}:") for split, rows in found.items())
        if not self.parameters["stop_on_anomalies"]:
            print(f"warning: data anomalies (stop_on_anomalies=False, continuing):\n{report}")
            return None
        return f"data anomalies found (see {anomalies.uri}):\n{report}"
