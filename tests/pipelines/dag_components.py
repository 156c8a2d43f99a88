"""A small real DAG for the runner's tests: a Beam component and two plain ones."""

from __future__ import annotations

import os

import apache_beam as beam

from components.base import (
    Artifact,
    BaseBeamExecutor,
    BaseComponent,
    BaseExecutor,
    ComponentSpec,
    Examples,
    Parameter,
)
from components.base.component import InputSpec
from components.base.functions import load_function


class Total(Artifact):
    TYPE_NAME = "TestTotal"


class NumbersExecutor(BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [out] = output_dict["numbers"]
        with self._make_beam_pipeline() as p:
            (
                p
                | "Create" >> beam.Create(range(exec_properties["count"]))
                | "Format" >> beam.Map(str)
                | "Write" >> beam.io.WriteToText(os.path.join(out.uri, "numbers"), file_name_suffix=".txt")
            )
        out.set("num_examples", exec_properties["count"])


class NumbersGen(BaseComponent):
    SPEC = ComponentSpec(outputs={"numbers": Examples}, parameters={"count": Parameter(int, 10)})
    EXECUTOR = NumbersExecutor


def read_numbers(artifact: Artifact) -> list[int]:
    values = []
    for name in sorted(os.listdir(artifact.uri)):
        with open(os.path.join(artifact.uri, name)) as f:
            values.extend(int(line) for line in f if line.strip())
    return values


class SumExecutor(BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [numbers] = input_dict["numbers"]
        [out] = output_dict["total"]
        values = read_numbers(numbers)
        with open(os.path.join(out.uri, "partial"), "w") as f:
            f.write("half-written")
        if exec_properties["fail"] or os.environ.get("TEST_SUM_FAIL") == "1":
            raise RuntimeError("sum exploded on purpose")
        with open(os.path.join(out.uri, "total.txt"), "w") as f:
            f.write(str(sum(values) * exec_properties["scale"]))


class Sum(BaseComponent):
    SPEC = ComponentSpec(
        inputs={"numbers": InputSpec(Examples)},
        outputs={"total": Total},
        parameters={"scale": Parameter(int, 1), "fail": Parameter(bool, False)},
    )
    EXECUTOR = SumExecutor


class ReportExecutor(BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [total] = input_dict["total"]
        [numbers] = input_dict["numbers"]
        [out] = output_dict["report"]
        with open(os.path.join(total.uri, "total.txt")) as f:
            value = f.read()
        with open(os.path.join(out.uri, "report.txt"), "w") as f:
            f.write(f"{len(read_numbers(numbers))} numbers, total {value}")
        with open(os.path.join(out.uri, "seconds_left.txt"), "w") as f:
            f.write(repr(self.context.seconds_left))


class Report(BaseComponent):
    SPEC = ComponentSpec(
        inputs={"total": InputSpec(Total), "numbers": InputSpec(Examples)},
        outputs={"report": Total},
    )
    EXECUTOR = ReportExecutor


class ApplyExecutor(BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [numbers] = input_dict["numbers"]
        [out] = output_dict["total"]
        with open(os.path.join(out.uri, "total.txt"), "w") as f:
            f.write(str(load_function(exec_properties["fn"])(read_numbers(numbers))))


class Apply(BaseComponent):
    """Applies user code (`module.path:function`) to the numbers, as a Trainer applies its run_fn."""

    SPEC = ComponentSpec(
        inputs={"numbers": InputSpec(Examples)},
        outputs={"total": Total},
        parameters={"fn": Parameter(str, user_code=True)},
    )
    EXECUTOR = ApplyExecutor


class LineCountExecutor(BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [out] = output_dict["total"]
        with open(exec_properties["path"]) as f:
            count = sum(1 for line in f if line.strip())
        with open(os.path.join(out.uri, "total.txt"), "w") as f:
            f.write(str(count))


class LineCount(BaseComponent):
    """Counts a text file's lines, as an ExampleGen reads a CSV: the file is data, not an artifact."""

    SPEC = ComponentSpec(outputs={"total": Total}, parameters={"path": Parameter(str, data_path=True)})
    EXECUTOR = LineCountExecutor
