"""The runner on a small real DAG, against a real ML Metadata SQLite store."""

from __future__ import annotations

import io
import os
import sys
import time

import pytest

from components.base.functions import code_fingerprint
from pipelines.metadata import MetadataStore, error_line, sqlite_config
from pipelines.pipeline import Pipeline, PipelineDefinitionError
from pipelines.runner import ComponentFailed, LocalRunner, _one_line
from tests.pipelines.dag_components import Apply, LineCount, NumbersGen, Report, Sum, read_numbers


def make_pipeline(count=10, scale=1, fail=False, listed_order=False):
    numbers = NumbersGen(count=count)
    total = Sum(numbers=numbers.outputs["numbers"], scale=scale, fail=fail)
    report = Report(total=total.outputs["total"], numbers=numbers.outputs["numbers"])
    # Listed out of order on purpose: the runner must sort by dependency.
    components = [report, total, numbers] if not listed_order else [numbers, total, report]
    return Pipeline("toy", components)


@pytest.fixture
def store(tmp_path):
    return MetadataStore(sqlite_config(str(tmp_path / "metadata.sqlite")))


@pytest.fixture
def runner(store, tmp_path):
    return LocalRunner(store, str(tmp_path / "toy"), out=io.StringIO())


def report_text(result):
    [report] = result.outputs("Report", "report")
    with open(os.path.join(report.uri, "report.txt")) as f:
        return f.read()


def test_components_run_in_dependency_order(runner):
    result = runner.run(make_pipeline(count=5))
    assert list(result.components) == ["NumbersGen", "Sum", "Report"]
    assert report_text(result) == "5 numbers, total 10"


def test_executors_learn_what_is_left_of_the_runs_time_budget(runner):
    def seconds_left(result):
        [report] = result.outputs("Report", "report")
        with open(os.path.join(report.uri, "seconds_left.txt")) as f:
            text = f.read()
        return None if text == "None" else float(text)

    assert seconds_left(runner.run(make_pipeline())) is None
    budgeted = make_pipeline(count=7)  # another count: not a cache hit
    budgeted.time_budget_minutes = 1.0
    left = seconds_left(runner.run(budgeted))
    assert 0 < left < 60  # NumbersGen and Sum ran first


def test_each_execution_gets_its_own_directory(runner, tmp_path):
    result = runner.run(make_pipeline())
    for component_id, component in result.components.items():
        for artifacts in component.outputs.values():
            expected = str(tmp_path / "toy" / component_id / str(component.execution_id))
            assert artifacts[0].uri.startswith(expected + os.sep)
            assert os.path.isdir(artifacts[0].uri)


def test_beam_component_uses_the_runners_pipeline_options(store, tmp_path):
    runner = LocalRunner(
        store,
        str(tmp_path / "toy"),
        beam_pipeline_args=["--direct_num_workers=2", "--direct_running_mode=multi_threading"],
        out=io.StringIO(),
    )
    result = runner.run(make_pipeline(count=100))
    [numbers] = result.outputs("NumbersGen", "numbers")
    assert sorted(read_numbers(numbers)) == list(range(100))


def test_rerun_with_same_inputs_is_a_cache_hit(runner):
    first = runner.run(make_pipeline())
    second = runner.run(make_pipeline())
    assert all(not c.cached for c in first.components.values())
    assert all(c.cached for c in second.components.values())
    # The cached run hands back the very same artifacts.
    assert second.outputs("Report", "report")[0].id == first.outputs("Report", "report")[0].id
    assert report_text(second) == report_text(first)


def test_changed_parameter_is_a_cache_miss_for_it_and_downstream_only(runner):
    runner.run(make_pipeline(scale=1))
    result = runner.run(make_pipeline(scale=3))
    assert result.components["NumbersGen"].cached
    assert not result.components["Sum"].cached
    assert not result.components["Report"].cached
    assert report_text(result) == "10 numbers, total 135"


def test_changed_code_version_is_a_cache_miss(runner, monkeypatch):
    runner.run(make_pipeline())
    monkeypatch.setattr(Sum, "code_version", classmethod(lambda cls: "changed"))
    result = runner.run(make_pipeline())
    assert result.components["NumbersGen"].cached
    assert not result.components["Sum"].cached


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    """A package of user code on sys.path: `userfns.main:total` calls into `userfns.helpers`."""
    package = tmp_path / "code" / "userfns"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("def scale():\n    return 1\n")
    (package / "unrelated.py").write_text("X = 1\n")
    (package / "main.py").write_text(
        "from userfns.helpers import scale\n\ndef total(values):\n    return sum(values) * scale()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    yield package
    for name in [m for m in sys.modules if m.startswith("userfns")]:
        del sys.modules[name]


def rewrite(path, text):
    path.write_text(text)
    os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime, so Python does not reuse its bytecode cache
    for name in [m for m in sys.modules if m.startswith("userfns")]:
        del sys.modules[name]


def test_user_code_fingerprint_follows_the_module_and_what_it_imports(user_package):
    before = code_fingerprint("userfns.main:total")
    assert before and before == code_fingerprint("userfns.main:total")
    rewrite(user_package / "unrelated.py", "X = 2\n")
    assert code_fingerprint("userfns.main:total") == before  # not imported by main
    rewrite(user_package / "helpers.py", "def scale():\n    return 3\n")
    assert code_fingerprint("userfns.main:total") != before
    assert code_fingerprint("no_such_module:f") == ""
    assert len(code_fingerprint("pipelines.captcha.model:run_fn")) == 16


def test_edited_user_code_is_a_cache_miss(runner, user_package):
    def pipeline():
        numbers = NumbersGen(count=4)
        return Pipeline("user-code", [numbers, Apply(numbers=numbers.outputs["numbers"], fn="userfns.main:total")])

    def total(result):
        [out] = result.outputs("Apply", "total")
        with open(os.path.join(out.uri, "total.txt")) as f:
            return f.read()

    assert total(runner.run(pipeline())) == "6"
    again = runner.run(pipeline())
    assert again.components["Apply"].cached
    rewrite(user_package / "helpers.py", "def scale():\n    return 10\n")  # the run_fn's helper, not the run_fn
    edited = runner.run(pipeline())
    assert edited.components["NumbersGen"].cached and not edited.components["Apply"].cached
    assert total(edited) == "60"


def test_data_edited_in_place_is_a_cache_miss_and_the_same_data_elsewhere_a_hit(store, runner, tmp_path):
    def count(path):
        result = runner.run(Pipeline("lines", [LineCount(path=str(path))]))
        [out] = result.outputs("LineCount", "total")
        with open(os.path.join(out.uri, "total.txt")) as f:
            return result.components["LineCount"], f.read()

    data = tmp_path / "data" / "rows.txt"
    data.parent.mkdir()
    data.write_text("a\nb\nc\n")
    first, total = count(data)
    assert not first.cached and total == "3"
    again, _ = count(data)
    assert again.cached
    moved = tmp_path / "elsewhere" / "rows.txt"  # another checkout, another machine's mount
    moved.parent.mkdir()
    moved.write_text(data.read_text())
    there, total = count(moved)
    assert there.cached and total == "3"
    [recorded] = store.store.get_executions_by_id([there.execution_id])
    assert str(moved) in recorded.properties["parameters"].string_value  # where it was read, recorded
    data.write_text("a\nb\nc\nd\n")  # edited in place: same path, same size class, new content
    edited, total = count(data)
    assert not edited.cached and total == "4"


def test_no_cache_forces_every_component_to_run(store, runner, tmp_path):
    runner.run(make_pipeline())
    forced = LocalRunner(store, str(tmp_path / "toy"), enable_cache=False, out=io.StringIO())
    result = forced.run(make_pipeline())
    assert not any(c.cached for c in result.components.values())


def test_failure_leaves_no_live_artifact_and_resume_reruns_only_the_failed_part(store, runner, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SUM_FAIL", "1")  # a transient failure: the next run succeeds
    with pytest.raises(ComponentFailed, match="sum exploded on purpose") as failure:
        runner.run(make_pipeline(), run_id="first")
    failed_id = failure.value.execution_id
    # The half-written directory is kept for inspection, never under the live name.
    component_root = tmp_path / "toy" / "Sum"
    assert not (component_root / str(failed_id)).exists()
    assert (component_root / f"{failed_id}.failed" / "total" / "partial").exists()
    # ML Metadata: the execution is FAILED and it produced no artifact.
    [run] = [r for r in store.runs("toy") if r.name == "toy.first"]
    states = {e.component_id: e.state for e in run.executions}
    assert states == {"NumbersGen": "COMPLETE", "Sum": "FAILED"}
    failed = next(e for e in run.executions if e.component_id == "Sum")
    assert failed.outputs == []
    assert "sum exploded on purpose" in failed.error

    monkeypatch.delenv("TEST_SUM_FAIL")
    resumed = runner.run(make_pipeline(), run_id="second")
    assert resumed.components["NumbersGen"].cached
    assert not resumed.components["Sum"].cached
    assert report_text(resumed) == "10 numbers, total 45"


def test_failed_execution_is_never_a_cache_hit(runner, monkeypatch):
    monkeypatch.setenv("TEST_SUM_FAIL", "1")
    with pytest.raises(ComponentFailed):
        runner.run(make_pipeline())
    monkeypatch.delenv("TEST_SUM_FAIL")
    # Same cache key as the failed execution: it must run, not reuse it.
    result = runner.run(make_pipeline())
    assert not result.components["Sum"].cached


def test_interrupt_is_recorded_as_failed_and_reraised(store, runner, monkeypatch):
    def interrupted(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(Sum.EXECUTOR, "Do", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run(make_pipeline(), run_id="ctrl-c")
    [run] = [r for r in store.runs("toy") if r.name == "toy.ctrl-c"]
    assert [e.state for e in run.executions] == ["COMPLETE", "FAILED"]
    assert "KeyboardInterrupt" in run.executions[1].error


def test_lineage_returns_the_producing_execution_even_after_cache_hits(store, runner):
    first = runner.run(make_pipeline())
    second = runner.run(make_pipeline())
    [artifact] = second.outputs("Sum", "total")
    assert store.producer_of(artifact.id) == first.components["Sum"].execution_id
    assert second.components["Sum"].execution_id != first.components["Sum"].execution_id


def test_cache_hit_is_refused_when_the_artifact_directory_was_deleted(runner):
    import shutil

    first = runner.run(make_pipeline())
    shutil.rmtree(first.outputs("Sum", "total")[0].uri)
    second = runner.run(make_pipeline())
    assert second.components["NumbersGen"].cached
    assert not second.components["Sum"].cached


def test_runs_lists_runs_with_components_states_and_artifacts(store, runner):
    runner.run(make_pipeline(), run_id="a")
    runner.run(make_pipeline(), run_id="b")
    runs = store.runs("toy")
    assert [r.name for r in runs] == ["toy.a", "toy.b"]
    assert [e.state for e in runs[1].executions] == ["CACHED"] * 3
    assert runs[0].executions[0].outputs[0][0] == "numbers"
    assert all(e.duration >= 0 for e in runs[0].executions)


def test_pipeline_rejects_duplicate_ids_and_unknown_producers():
    numbers = NumbersGen()
    with pytest.raises(PipelineDefinitionError, match="duplicate"):
        Pipeline("bad", [numbers, NumbersGen()])
    total = Sum(numbers=numbers.outputs["numbers"])
    with pytest.raises(PipelineDefinitionError, match="not in the pipeline"):
        Pipeline("bad", [total])


def test_component_rejects_wrong_input_type_and_bad_parameter():
    numbers = NumbersGen()
    total = Sum(numbers=numbers.outputs["numbers"])
    with pytest.raises(TypeError, match="takes Examples"):
        Sum(numbers=total.outputs["total"])
    with pytest.raises(TypeError, match="must be"):
        NumbersGen(count="ten")
    with pytest.raises(TypeError, match="unknown argument"):
        NumbersGen(cuont=3)


def test_each_run_gets_its_own_record_even_at_the_same_moment(store, runner, monkeypatch):
    import datetime as real_datetime

    import pipelines.runner as runner_module

    class FrozenClock(real_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return real_datetime.datetime(2026, 12, 1, 8, 0, 0, 123456)

    monkeypatch.setattr(runner_module.datetime, "datetime", FrozenClock)  # two runs in one microsecond
    ids = {runner.run(make_pipeline()).run_id for _ in range(2)}
    assert len(ids) == 2 and all(i.startswith("20261201-080000-123456-") for i in ids)
    assert len(store.runs("toy")) == 2
    with pytest.raises(ValueError, match="is already recorded: a run id is used once"):
        runner.run(make_pipeline(), run_id=sorted(ids)[0])
    assert len(store.runs("toy")) == 2  # nothing merged into the earlier run


def test_a_tensorflow_op_error_is_summed_up_by_its_cause_not_its_graph_node():
    """A TensorFlow op error's message ends in the node's name (`[[{{node ...}}]] [Op:MakeIterator]
    name:`); the one line a failed run, `pipelines runs` and the runs page show was that line."""
    import traceback

    import tensorflow as tf

    @tf.function
    def first():  # in a graph, as keras' fit reads its input: the error comes from MakeIterator's node
        files = tf.data.Dataset.from_tensor_slices(["a", "b"])
        dataset = files.interleave(tf.data.Dataset.from_tensors, cycle_length=1, num_parallel_calls=2)
        return next(iter(dataset))

    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        first()
    assert str(raised.value).strip().splitlines()[-1].strip().startswith("[[{{node")  # what was shown
    line = _one_line(raised.value)
    assert line.startswith("InvalidArgumentError: If `cycle_length` is set") and "num_parallel_calls" in line
    recorded = error_line("".join(traceback.format_exception(raised.value)))  # as `runs` reads the store
    assert recorded.endswith("`num_parallel_calls` is 2 and `cycle_length` is 1"), recorded
    assert "{{" not in line + recorded and "[Op:" not in line + recorded


def test_an_error_line_is_the_last_line_of_anything_else():
    assert (
        error_line("Traceback (most recent call last):\n  File x\nValueError: bad value\n") == "ValueError: bad value"
    )
    assert error_line("") == "" and error_line("only") == "only"
