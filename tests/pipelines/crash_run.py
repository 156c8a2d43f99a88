"""A small pipeline that ends in the real Pusher, run in a process of its own that can kill itself.

python -m tests.pipelines.crash_run --root DIR --sqlite FILE --serving DIR [--kill-at POINT]

POINT is `before:ID` or `after:ID` (a component boundary: ID is NumbersGen, Sum, ToyTrainer, ToyBless or
Pusher), `during:ID` (the executor has written its outputs but not returned) or `pusher-copy` (half-way
through the Pusher's copy of the SavedModel). The process sends itself
SIGKILL there: no handler, no cleanup, as when a machine dies. Without --kill-at it prints the result.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal

from components.base import BaseComponent, BaseExecutor, ComponentSpec, Model, ModelBlessing, Parameter, fileio
from components.base.component import InputSpec
from components.pusher import Pusher, publish
from components.trainer.fn_args import SERVING_DIR
from pipelines.metadata import MetadataStore, sqlite_config
from pipelines.pipeline import Pipeline
from pipelines.runner import LocalRunner
from tests.pipelines.dag_components import NumbersGen, Sum, Total


class ToyTrainerExecutor(BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        from tests.serving.toy_model import write_toy_model

        [model] = output_dict["model"]
        write_toy_model(model.uri, 1, offset=exec_properties["offset"], warmup=False)
        os.rename(os.path.join(model.uri, "1"), os.path.join(model.uri, SERVING_DIR))


class ToyTrainer(BaseComponent):
    SPEC = ComponentSpec(
        inputs={"total": InputSpec(Total)}, outputs={"model": Model}, parameters={"offset": Parameter(float, 1.0)}
    )
    EXECUTOR = ToyTrainerExecutor


class ToyBlessExecutor(BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        [blessing] = output_dict["blessing"]
        blessing.set("blessed", 1)


class ToyBless(BaseComponent):
    SPEC = ComponentSpec(inputs={"model": InputSpec(Model)}, outputs={"blessing": ModelBlessing})
    EXECUTOR = ToyBlessExecutor


COMPONENTS = ("NumbersGen", "Sum", "ToyTrainer", "ToyBless", "Pusher")


def make_pipeline(serving_dir: str, offset: float = 1.0) -> Pipeline:
    numbers = NumbersGen(count=5)
    total = Sum(numbers=numbers.outputs["numbers"], scale=1, fail=False)
    trainer = ToyTrainer(total=total.outputs["total"], offset=offset)
    bless = ToyBless(model=trainer.outputs["model"])
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=bless.outputs["blessing"],
        serving_dir=serving_dir,
        model_name="toy",
    )
    return Pipeline("crash", [numbers, total, trainer, bless, pusher])


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(kill_at: str) -> None:
    """Patches this process so it dies at `kill_at`."""
    if kill_at == "pusher-copy":
        copytree = fileio.copytree

        def copy_half_then_die(source: str, destination: str) -> None:
            copytree(source, destination)
            files = sorted(fileio.walk_files(destination))
            for path in files[len(files) // 2 :]:  # as if the copy were cut off half-way
                fileio.gfile.remove(path)
            _die()

        publish.fileio.copytree = copy_half_then_die
        return
    when, component_id = kill_at.split(":")
    if when == "during":
        component_class = {c.id: type(c) for c in make_pipeline("unused").components}[component_id]
        do = component_class.EXECUTOR.Do

        def do_then_die(self, *args, **kwargs):
            do(self, *args, **kwargs)
            _die()

        component_class.EXECUTOR.Do = do_then_die
        return
    run_component = LocalRunner._run_component

    def run_and_die(self, component, *args, **kwargs):
        if when == "before" and component.id == component_id:
            _die()
        result = run_component(self, component, *args, **kwargs)
        if when == "after" and component.id == component_id:
            _die()
        return result

    LocalRunner._run_component = run_and_die


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--sqlite", required=True)
    parser.add_argument("--serving", required=True)
    parser.add_argument("--kill-at")
    args = parser.parse_args()
    if args.kill_at:
        arm(args.kill_at)
    log = io.StringIO()
    runner = LocalRunner(MetadataStore(sqlite_config(args.sqlite)), args.root, out=log)
    result = runner.run(make_pipeline(args.serving))
    print(
        json.dumps(
            {
                "log": log.getvalue(),
                "components": {cid: [r.cached, r.execution_id] for cid, r in result.components.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
