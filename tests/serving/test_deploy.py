"""serving/deploy/: Docker cannot run here, so every config is parsed with the real protos
and every manifest checked for the ports, paths and files the servers expect."""

from __future__ import annotations

import json
import os

import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.model_server.config import read_batching_parameters, read_model_server_config, read_monitoring_path

DEPLOY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "serving", "deploy")


def load_yaml(name):
    with open(os.path.join(DEPLOY, name)) as f:
        return list(yaml.safe_load_all(f))


def test_models_config_is_a_model_server_config_for_the_mounted_models():
    with open(os.path.join(DEPLOY, "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    models = {m.name: m for m in config.model_config_list.config}
    assert set(models) == {"captcha", "house_price", "mnist"}
    assert all(m.base_path == f"/models/{name}" and m.model_platform == "tensorflow" for name, m in models.items())
    assert read_model_server_config(os.path.join(DEPLOY, "models.config")) == config


def test_batching_and_monitoring_files_parse():
    params = read_batching_parameters(os.path.join(DEPLOY, "batching_parameters.txt"))
    assert params.max_batch_size == 64 and params.num_batch_threads == 2
    assert read_monitoring_path(os.path.join(DEPLOY, "monitoring.config")) == "/monitoring/prometheus/metrics"


def server_flags(args):
    return dict(a.lstrip("-").split("=", 1) for a in args)


def test_docker_compose_runs_official_serving_with_the_same_files():
    (compose,) = load_yaml("docker-compose.yml")
    server, frontend = compose["services"]["model-server"], compose["services"]["frontend"]
    assert server["image"].startswith("tensorflow/serving:")
    flags = server_flags(server["command"])
    assert flags["port"] == "8500" and flags["rest_api_port"] == "8501"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in server["volumes"]}
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        source = mounts[flags[flag]]
        assert os.path.exists(os.path.join(DEPLOY, source)), source
    assert mounts["/models"] == "../../serving_models"
    assert {"127.0.0.1:8500:8500", "127.0.0.1:8501:8501"} <= set(server["ports"])
    assert frontend["environment"]["FRONTEND_REST_URL"] == "http://model-server:8501"
    assert "command" not in frontend  # the image's gunicorn CMD
    assert frontend["depends_on"]["model-server"]["condition"] == "service_healthy"
    assert os.path.exists(os.path.join(DEPLOY, "..", "..", frontend["build"]["dockerfile"]))


def test_the_frontend_image_runs_gunicorn_over_the_wsgi_app_without_tensorflow():
    with open(os.path.join(DEPLOY, "Dockerfile.frontend")) as f:
        dockerfile = f.read()
    cmd = json.loads(next(line for line in dockerfile.splitlines() if line.startswith("CMD "))[4:])
    assert cmd[0] == "gunicorn" and cmd[-1] == "serving.frontend.wsgi:app"
    with open(os.path.join(DEPLOY, "frontend-requirements.txt")) as f:
        wanted = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    assert "gunicorn" in wanted and not wanted & {"tensorflow", "apache-beam", "tensorflow-data-validation", "tf-keras"}
    with open(os.path.join(DEPLOY, "..", "..", "constraints.txt")) as f:
        pinned = {line.split("==")[0].lower() for line in f if "==" in line}
    assert wanted <= pinned  # every one of them pinned


def test_kubernetes_manifests_have_ports_probes_and_config():
    docs = {
        (d["kind"], d["metadata"]["name"]): d
        for d in load_yaml("k8s/model-server.yaml") + load_yaml("k8s/frontend.yaml")
    }
    server = docs[("Deployment", "model-server")]["spec"]["template"]["spec"]
    (container,) = server["containers"]
    assert container["image"].startswith("tensorflow/serving:")
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/captcha", "port": 8501}
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
    flags = server_flags(container["args"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert flags["model_config_file"].startswith(mounts["config"] + "/")
    assert {p["port"] for p in docs[("Service", "model-server")]["spec"]["ports"]} == {8500, 8501}
    frontend = docs[("Deployment", "frontend")]["spec"]["template"]["spec"]["containers"][0]
    assert frontend["readinessProbe"]["httpGet"] == {"path": "/ping", "port": 5000}
    assert {"name": "FRONTEND_REST_URL", "value": "http://model-server:8501"} in frontend["env"]
    assert docs[("Service", "frontend")]["spec"]["ports"][0]["targetPort"] == 5000
    (kustomization,) = load_yaml("kustomization.yaml")
    files = kustomization["configMapGenerator"][0]["files"]
    assert {
        os.path.basename(flags[f]) for f in ("model_config_file", "batching_parameters_file", "monitoring_config_file")
    } == set(files)
    assert all(os.path.exists(os.path.join(DEPLOY, f)) for f in files + kustomization["resources"])
