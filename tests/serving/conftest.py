import contextlib
import os

import grpc
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving.toy_model import model_server, write_toy_model

MODELS_CONFIG = """
model_config_list {{
  config {{
    name: "toy"
    base_path: "{base}/toy"
    model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
  config {{
    name: "other"
    base_path: "{base}/other"
    model_platform: "tensorflow"
  }}
}}
"""


@pytest.fixture(scope="session")
def toy_models(tmp_path_factory):
    """toy versions 1 and 2 (offset = version) and other version 5, with a models.config naming both."""
    base = str(tmp_path_factory.mktemp("models"))
    write_toy_model(os.path.join(base, "toy"), 1)
    write_toy_model(os.path.join(base, "toy"), 2)
    write_toy_model(os.path.join(base, "other"), 5, offset=10.0)
    config = os.path.join(base, "models.config")
    with open(config, "w") as f:
        f.write(MODELS_CONFIG.format(base=base))
    monitoring = os.path.join(base, "monitoring.config")
    with open(monitoring, "w") as f:
        f.write('prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n')
    return {"base": base, "config": config, "monitoring": monitoring}


@pytest.fixture(scope="session")
def api_server(toy_models, tmp_path_factory):
    """One server for the API tests: two models, labels, monitoring, a 1 MiB request limit."""
    with serving(
        toy_models["config"],
        tmp_path_factory,
        "api_server",
        "--monitoring_config_file",
        toy_models["monitoring"],
        "--max_request_bytes",
        str(1 << 20),
        "--file_system_poll_wait_seconds",
        "0",
    ) as server:
        yield server


@contextlib.contextmanager
def serving(models_config: str, tmp_path_factory, name: str, *flags: str):
    """A model server over `models_config` (and `flags`), its log as <name>.log in a folder of its own
    (toy_model.model_server: no lag shedding)."""
    log = str(tmp_path_factory.mktemp("logs") / f"{name}.log")
    with model_server("--model_config_file", models_config, *flags, log_path=log) as server:
        yield server


@contextlib.contextmanager
def prediction_stub(server):
    """TensorFlow Serving's own PredictionService stub over an insecure channel to `server`."""
    channel = grpc.insecure_channel(server.grpc_target)
    try:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    finally:
        channel.close()
