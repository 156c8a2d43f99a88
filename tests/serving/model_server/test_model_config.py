"""The model config file's checks (serving/model_server/config.py), without a server."""

from __future__ import annotations

import logging

import pytest

from serving.model_server.config import ConfigError, read_model_server_config, single_model_config


def config_file(tmp_path, *models: tuple[str, str]):
    entries = "".join(f'config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}\n' for n, p in models)
    path = tmp_path / "models.config"
    path.write_text(f"model_config_list {{\n{entries}}}\n")
    return str(path)


def test_a_model_config_list_is_read_with_each_model(tmp_path):
    config = read_model_server_config(config_file(tmp_path, ("a", "/m/a"), ("b", "/m/b")))
    assert [(m.name, m.base_path) for m in config.model_config_list.config] == [("a", "/m/a"), ("b", "/m/b")]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ((("a", "/m/a"), ("a", "/m/b")), "model 'a' is configured twice"),
        ((("a", ""),), "model 'a' has no base_path"),
        ((("", "/m/a"),), "a model config has no name"),
    ],
)
def test_an_unusable_model_config_names_the_file_and_the_model(tmp_path, models, message):
    path = config_file(tmp_path, *models)
    with pytest.raises(ConfigError, match=message) as refused:
        read_model_server_config(path)
    assert path in str(refused.value)


@pytest.mark.parametrize("name", ["team/captcha", "captcha:v2"])
def test_a_name_rest_cannot_address_is_served_with_a_warning(tmp_path, caplog, name):
    """TF Serving's REST paths (/v1/models/<name>[:verb]) cannot carry '/' or ':' in a name; gRPC can,
    so the model is still served, as TF Serving does, and the log says why REST will not find it."""
    with caplog.at_level(logging.WARNING, logger="serving.model_server.config"):
        config = read_model_server_config(config_file(tmp_path, (name, "/m/a"), ("plain", "/m/b")))
    assert [m.name for m in config.model_config_list.config] == [name, "plain"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and repr(name) in warnings[0] and "REST" in warnings[0]


def test_model_name_flag_gets_the_same_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="serving.model_server.config"):
        config = single_model_config("team/captcha", "/m/a")
    assert config.model_config_list.config[0].name == "team/captcha"
    assert any("--model_name" in r.getMessage() and "REST" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: None, "it does not exist"),
        (lambda p: p.write_text("a file"), "it is a file, not a folder"),
        (lambda p: p.mkdir(), "it has no version directories yet"),
    ],
)
def test_a_base_path_without_versions_is_logged_once_with_why(tmp_path, caplog, make, said):
    from serving.model_server.manager import ModelManager

    base = tmp_path / "base"
    make(base)
    manager = ModelManager(single_model_config("m", str(base)), poll_seconds=0)
    with caplog.at_level(logging.WARNING, logger="serving.model_server"):
        manager.start()  # loads what is there: nothing
        manager.sync()  # a poll later: still nothing, and not said again
    manager.stop()
    warned = [r.getMessage() for r in caplog.records if "No versions of servable m" in r.getMessage()]
    assert warned == [f"No versions of servable m found under base path {base} ({said})"]
