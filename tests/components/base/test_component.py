"""components/base on its own: what a component refuses when it is wired, how artifacts type their
properties, and what enters the cache key when code changes."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import uuid

import pytest

from components.base import BaseComponent, ComponentSpec, Examples, Model, Parameter
from components.base.artifacts import Artifact, ModelBlessing
from components.base.component import InputSpec, within
from components.base.functions import code_fingerprint, data_fingerprint, load_function


class Producer(BaseComponent):
    SPEC = ComponentSpec(outputs={"examples": Examples, "model": Model})


class Consumer(BaseComponent):
    SPEC = ComponentSpec(
        inputs={"examples": InputSpec(Examples), "baseline": InputSpec(Model, optional=True)},
        parameters={"rate": Parameter(float, check=within(0, 1)), "name": Parameter(str, "x")},
    )


def test_wiring_mistakes_are_refused_with_the_component_and_name():
    producer = Producer()
    with pytest.raises(TypeError, match=r"Consumer: unknown argument\(s\) \['colour'\]"):
        Consumer(examples=producer.outputs["examples"], rate=0.1, colour="red")
    with pytest.raises(TypeError, match="Consumer: input 'examples' is required"):
        Consumer(rate=0.1)
    with pytest.raises(TypeError, match="input 'examples' takes Examples, got Model"):
        Consumer(examples=producer.outputs["model"], rate=0.1)
    with pytest.raises(TypeError, match="must be a Channel, got str"):
        Consumer(examples="/data/examples", rate=0.1)
    with pytest.raises(TypeError, match="parameter 'rate' is required"):
        Consumer(examples=producer.outputs["examples"])
    with pytest.raises(TypeError, match="parameter 'rate' must be"):
        Consumer(examples=producer.outputs["examples"], rate="fast")
    # A parameter's own check runs when the component is declared, before any run.
    with pytest.raises(ValueError, match=r"Consumer: parameter 'rate' must be within \[0, 1\], got 1.5"):
        Consumer(examples=producer.outputs["examples"], rate=1.5)
    with pytest.raises(ValueError, match="must be within"):
        Consumer(examples=producer.outputs["examples"], rate=float("nan"))
    assert Consumer(examples=producer.outputs["examples"], rate=0.5).parameters["rate"] == 0.5


def test_a_wired_component_knows_its_upstream_defaults_and_outputs():
    producer = Producer(id="Gen")
    consumer = Consumer(examples=producer.outputs["examples"], rate=0.5, id="Use")
    assert consumer.upstream_ids == {"Gen"} and "baseline" not in consumer.inputs
    assert consumer.parameters == {"rate": 0.5, "name": "x"}
    assert producer.outputs["model"].producer_id == "Gen" and producer.outputs["model"].type is Model
    fingerprints = {
        Consumer(examples=producer.outputs["examples"], rate=r).parameters_fingerprints() for r in (0.5, 0.6)
    }
    assert len(fingerprints) == 2


def test_data_fingerprint_follows_what_a_path_holds_not_where_it_lies(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "rows.csv").write_text("x,y\n1,2\n")
    (tmp_path / "a" / "sub").mkdir()
    (tmp_path / "a" / "sub" / "more.csv").write_text("3,4\n")
    (tmp_path / "b" / "sub").mkdir(parents=True)
    (tmp_path / "b" / "rows.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b" / "sub" / "more.csv").write_text("3,4\n")
    folder, file = data_fingerprint(str(tmp_path / "a")), data_fingerprint(str(tmp_path / "a" / "rows.csv"))
    assert folder == data_fingerprint(str(tmp_path / "b"))  # the same data elsewhere
    assert file == data_fingerprint(str(tmp_path / "b" / "rows.csv")) != folder
    (tmp_path / "b" / "sub" / "more.csv").write_text("3,5\n")  # one byte, one level down
    assert data_fingerprint(str(tmp_path / "b")) != folder
    (tmp_path / "b" / "sub" / "more.csv").write_text("3,4\n")
    (tmp_path / "b" / "sub" / "more.csv").rename(tmp_path / "b" / "sub" / "other.csv")  # renamed
    assert data_fingerprint(str(tmp_path / "b")) != folder
    (tmp_path / "a" / "rows.csv").write_text("x,y\n1,2\n5,6\n")  # edited in place
    assert data_fingerprint(str(tmp_path / "a" / "rows.csv")) != file
    (tmp_path / "empty").write_text("")
    missing = data_fingerprint(str(tmp_path / "nowhere"))  # no exception: the executor reports it
    assert missing and missing != data_fingerprint(str(tmp_path / "empty"))


def test_data_off_the_local_disk_is_fingerprinted_by_its_path_and_its_files_sizes():
    import tensorflow as tf

    root = f"ram://fingerprint-{uuid.uuid4().hex}"
    for folder in ("a", "b"):
        tf.io.gfile.makedirs(f"{root}/{folder}/sub")
        with tf.io.gfile.GFile(f"{root}/{folder}/sub/rows.csv", "w") as f:
            f.write("1,2\n")
    folder = data_fingerprint(f"{root}/a")
    assert folder != data_fingerprint(f"{root}/b")  # not downloaded to compare: the path counts
    assert data_fingerprint(f"{root}/a/sub/rows.csv") not in (folder, data_fingerprint(f"{root}/b/sub/rows.csv"))
    with tf.io.gfile.GFile(f"{root}/a/sub/rows.csv", "w") as f:
        f.write("1,2\n3,4\n")
    assert data_fingerprint(f"{root}/a") != folder
    assert data_fingerprint(f"{root}/nowhere") != data_fingerprint(f"{root}/elsewhere")


def test_a_data_path_enters_the_fingerprint_by_content_and_is_recorded_with_its_path(tmp_path):
    class Reader(BaseComponent):
        SPEC = ComponentSpec(parameters={"path": Parameter(str, data_path=True), "limit": Parameter(int, 3)})

    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "data.txt").write_text("1\n2\n")
    one, two = Reader(path=str(tmp_path / "one" / "data.txt")), Reader(path=str(tmp_path / "two" / "data.txt"))
    assert one.parameters_fingerprints()[1] == two.parameters_fingerprints()[1]
    recorded = json.loads(one.parameters_fingerprints()[0])
    assert recorded["parameters"]["path"] == str(tmp_path / "one" / "data.txt")
    assert recorded["data"] == {"path": data_fingerprint(str(tmp_path / "one" / "data.txt"))}
    (tmp_path / "two" / "data.txt").write_text("1\n2\n3\n")
    assert one.parameters_fingerprints()[1] != two.parameters_fingerprints()[1]
    assert "data" not in json.loads(Reader(path=None).parameters_fingerprints()[0])  # unset: nothing to read


def test_artifact_properties_are_typed_as_ml_metadata_stores_them():
    blessing = ModelBlessing(uri="/tmp/b")
    blessing.set("blessed", True)  # a bool is stored as INT 1
    assert blessing.get("blessed") == 1 and type(blessing.get("blessed")) is int
    with pytest.raises(TypeError, match="ModelBlessing.blessed is INT"):
        blessing.set("blessed", "yes")
    examples = Examples(uri="/tmp/e")
    examples.split_names = ["train", "eval"]
    assert examples.split_names == ["train", "eval"] and examples.split_uri("eval") == "/tmp/e/Split-eval"
    assert Artifact.type_for("Examples") is Examples and Artifact.type_for("NoSuchType") is Artifact


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    """A first-party package on sys.path: `userpkg.train` imports `userpkg.helper`."""
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("RATE = 1\n")
    (package / "train.py").write_text("from userpkg import helper\n\ndef run_fn(args):\n    return helper.RATE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [m for m in sys.modules if m.startswith("userpkg")]:
        del sys.modules[name]


def test_editing_user_code_or_what_it_imports_changes_its_fingerprint(user_package):
    before = code_fingerprint("userpkg.train:run_fn")
    assert before and code_fingerprint("userpkg.train:run_fn") == before
    (user_package / "helper.py").write_text("RATE = 2\n")
    after_helper = code_fingerprint("userpkg.train:run_fn")
    assert after_helper != before
    (user_package / "train.py").write_text(
        textwrap.dedent("""\
        from userpkg import helper

        def run_fn(args):
            return helper.RATE * 2
        """)
    )
    assert code_fingerprint("userpkg.train:run_fn") not in (before, after_helper)
    importlib.invalidate_caches()
    assert load_function("userpkg.train:run_fn")(None) == 4


def test_user_code_paths_are_checked():
    with pytest.raises(ValueError, match="expected 'module.path:function'"):
        load_function("no_colon_here")
    assert code_fingerprint("no.such.module:fn") == ""


def test_every_component_names_its_keys_and_its_executor_loads_on_first_use():
    import importlib
    import pkgutil

    import components
    from components.base import BaseExecutor

    checked = 0
    for package in pkgutil.iter_modules(components.__path__):
        if package.name == "base":
            continue
        module = importlib.import_module(f"components.{package.name}.component")
        keys = {value for name, value in vars(module).items() if name.endswith("_KEY")}
        classes = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, BaseComponent)]
        spec_keys = set()
        for cls in classes:
            if cls.__module__ != module.__name__:
                continue
            spec_keys |= set(cls.SPEC.inputs) | set(cls.SPEC.outputs) | set(cls.SPEC.parameters)
            assert issubclass(cls.EXECUTOR, BaseExecutor), cls
            checked += 1
        assert keys == spec_keys, (package.name, keys ^ spec_keys)  # one constant per key, no stale one
    assert checked >= 12  # four ExampleGens and the eight other components


def test_an_executor_ref_that_names_no_class_says_so():
    from components.base.component import ExecutorRef

    class Broken(BaseComponent):
        EXECUTOR = ExecutorRef("components.base.functions:load_function")

    with pytest.raises(TypeError, match="is not a class"):
        Broken.EXECUTOR  # noqa: B018 - the attribute access is what is tested
