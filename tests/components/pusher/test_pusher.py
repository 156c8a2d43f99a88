"""Pusher: atomic versions, never an overwrite, keep-N, models.config in TF Serving's format."""

from __future__ import annotations

import os
import threading

import pytest
from google.protobuf import text_format

from components.pusher import publish as publishing
from components.pusher.publish import (
    VersionExists,
    prune,
    publish,
    published_version_of,
    versions,
    write_models_config,
)


def fake_saved_model(path, payload: bytes = b"graph", files: int = 50):
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(payload)
    for i in range(files):
        with open(os.path.join(path, "variables", f"shard-{i}"), "wb") as f:
            f.write(os.urandom(2048))
    return str(path)


def test_versions_increase_and_existing_ones_are_untouched(tmp_path):
    base = str(tmp_path / "serving" / "captcha")
    first = publish(fake_saved_model(tmp_path / "m1", b"one"), base)
    second = publish(fake_saved_model(tmp_path / "m2", b"two"), base)
    assert (first, second) == (1, 2)
    assert open(os.path.join(base, "1", "saved_model.pb"), "rb").read() == b"one"
    assert open(os.path.join(base, "2", "saved_model.pb"), "rb").read() == b"two"


def test_a_version_that_appears_meanwhile_is_never_overwritten(tmp_path, monkeypatch):
    base = str(tmp_path / "captcha")
    publish(fake_saved_model(tmp_path / "m1", b"one"), base)
    real_copytree = publishing.fileio.copytree

    def copy_then_race(src, dst, *args, **kwargs):
        result = real_copytree(src, dst, *args, **kwargs)
        if os.path.basename(dst).startswith(".staging"):
            # Another pusher publishes version 2 while this one is still copying.
            fake_saved_model(os.path.join(base, "2"), b"theirs", files=1)
        return result

    monkeypatch.setattr(publishing.fileio, "copytree", copy_then_race)
    with pytest.raises(VersionExists):
        publish(fake_saved_model(tmp_path / "m2", b"mine"), base)
    assert open(os.path.join(base, "2", "saved_model.pb"), "rb").read() == b"theirs"
    assert [n for n in os.listdir(base) if n.startswith(".")] == []


def test_a_failed_copy_leaves_no_version_directory(tmp_path, monkeypatch):
    base = str(tmp_path / "captcha")

    def broken_copy(src, dst, *args, **kwargs):
        os.makedirs(dst)
        open(os.path.join(dst, "saved_model.pb"), "wb").close()
        raise OSError("disk full")

    monkeypatch.setattr(publishing.fileio, "copytree", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        publish(fake_saved_model(tmp_path / "m1"), base)
    assert versions(base) == []
    assert os.listdir(base) == []  # the staging copy is cleaned up too


def test_a_poller_never_sees_a_half_written_version(tmp_path):
    base = str(tmp_path / "captcha")
    os.makedirs(base)
    source = fake_saved_model(tmp_path / "m", files=400)
    expected = sorted(os.listdir(os.path.join(source, "variables")))
    seen_incomplete = []
    done = threading.Event()

    def poll():
        while not done.is_set():
            for version in versions(base):
                variables = os.path.join(base, str(version), "variables")
                if (
                    not os.path.exists(os.path.join(base, str(version), "saved_model.pb"))
                    or sorted(os.listdir(variables)) != expected
                ):
                    seen_incomplete.append(version)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        for _ in range(3):
            publish(source, base)
    finally:
        done.set()
        poller.join()
    assert versions(base) == [1, 2, 3]
    assert seen_incomplete == []


def test_keep_the_newest_n_versions(tmp_path):
    base = str(tmp_path / "captcha")
    for i in range(5):
        publish(fake_saved_model(tmp_path / f"m{i}", str(i).encode(), files=1), base)
    assert prune(base, 2) == [1, 2, 3]
    assert versions(base) == [4, 5]
    assert not [n for n in os.listdir(base) if n.startswith(".")]


def test_the_same_saved_model_is_recognised_as_published(tmp_path):
    base = str(tmp_path / "captcha")
    model = fake_saved_model(tmp_path / "m", b"same", files=2)
    publish(model, base)
    os.makedirs(os.path.join(base, "1", "assets.extra"))
    open(os.path.join(base, "1", "assets.extra", "tf_serving_warmup_requests"), "wb").close()
    assert published_version_of(model, base) == 1
    assert published_version_of(fake_saved_model(tmp_path / "other", b"other", files=2), base) is None


def test_models_config_is_tf_servings_text_format(tmp_path):
    from tensorflow_serving.config import model_server_config_pb2

    serving = tmp_path / "serving"
    publish(fake_saved_model(tmp_path / "a", files=1), str(serving / "captcha"))
    publish(fake_saved_model(tmp_path / "b", files=1), str(serving / "house_price"))
    (serving / "empty_model").mkdir()
    path = write_models_config(str(serving))
    config = text_format.Parse(open(path).read(), model_server_config_pb2.ModelServerConfig())
    models = {c.name: c for c in config.model_config_list.config}
    assert set(models) == {"captcha", "house_price"}
    assert models["captcha"].base_path == str(serving / "captcha")
    assert models["captcha"].model_platform == "tensorflow"
