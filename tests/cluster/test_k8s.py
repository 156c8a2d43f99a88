"""cluster/k8s: the same topology on Kubernetes, checked by parsing (no cluster runs here)."""

import json
import os
import re
import subprocess
import sys

import yaml

from cluster import downloads
from cluster.flink import ClusterConfig, flink_settings
from pipelines.cli import build_parser
from tests.conftest import ROOT

K8S = os.path.join(ROOT, "cluster", "k8s")


def _documents() -> dict[tuple[str, str], dict]:
    found = {}
    for name in sorted(os.listdir(K8S)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            with open(os.path.join(K8S, name)) as f:
                for doc in yaml.safe_load_all(f):
                    found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def _containers(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["spec"]["template"]["spec"]["containers"]}


def _parse_flink_conf(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if k.strip()}


def test_kustomization_lists_every_manifest():
    with open(os.path.join(K8S, "kustomization.yaml")) as f:
        listed = set(yaml.safe_load(f)["resources"])
    assert listed == {n for n in os.listdir(K8S) if n.endswith(".yaml") and n != "kustomization.yaml"}


def test_flink_settings_are_those_make_flink_up_uses():
    docs = _documents()
    on_k8s = _parse_flink_conf(docs[("ConfigMap", "flink-config")]["data"]["flink-conf.yaml"])
    local = flink_settings(ClusterConfig())
    where = re.compile(r"(address|bind-host|host|port)$")
    for key, value in local.items():
        if where.search(key):
            continue  # addresses and ports are the cluster's own
        assert on_k8s.get(key) == value, f"{key}: k8s {on_k8s.get(key)!r} vs make flink-up {value!r}"
    assert on_k8s["jobmanager.rpc.address"] == "flink-jobmanager" and on_k8s["rest.port"] == "8081"


def test_every_taskmanager_has_a_beam_worker_pool_beside_it():
    docs = _documents()
    taskmanager = docs[("Deployment", "flink-taskmanager")]
    containers = _containers(taskmanager)
    assert taskmanager["spec"]["replicas"] == 2
    minor = ".".join(downloads.FLINK_VERSION.split(".")[:2])
    assert containers["taskmanager"]["image"].startswith(f"flink:{downloads.FLINK_VERSION}")
    pool = containers["beam-worker-pool"]
    assert {"containerPort": 50000, "name": "worker-pool"} in pool["ports"]
    script, executable = pool["command"][1], pool["command"][pool["command"].index("--container_executable") + 1]
    assert os.path.isfile(os.path.join(ROOT, script))
    assert executable.startswith("/app/") and os.access(os.path.join(ROOT, executable[len("/app/") :]), os.X_OK)
    job_server = docs[("Deployment", "beam-job-server")]
    [server] = _containers(job_server).values()
    assert server["image"] == f"apache/beam_flink{minor}_job_server:{downloads.JOB_SERVER_VERSION}"
    assert "--flink-master=flink-jobmanager:8081" in server["args"]
    rest_ports = {p["port"] for p in docs[("Service", "flink-jobmanager")]["spec"]["ports"]}
    assert 8081 in rest_ports


def test_training_job_builds_one_tf_config_per_host_and_runs_commands_the_project_accepts(tmp_path):
    docs = _documents()
    job = docs[("Job", "captcha-pipeline")]
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    assert job["spec"]["template"]["spec"]["subdomain"] == docs[("Service", "trainer-workers")]["metadata"]["name"]
    [container] = _containers(job).values()
    script = container["args"][0]
    snippet = re.search(r"python -c '(.*?)'\)", script, re.S).group(1)
    for index in (0, 1):
        out = subprocess.run(
            [sys.executable, "-c", snippet],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TF_WORKERS": "2", "JOB_COMPLETION_INDEX": str(index)},
        ).stdout
        tf_config = json.loads(out)
        assert tf_config["task"] == {"type": "worker", "index": index}
        assert tf_config["cluster"]["worker"] == [f"captcha-pipeline-{k}.trainer-workers:2222" for k in range(2)]
    # The chief's pipeline command parses as the CLI's, every Beam option known to Beam.
    chief = re.search(r"exec python -m pipelines (run .*?)\nelse", script, re.S).group(1)
    argv = [a for a in chief.replace("\\\n", " ").split() if a != "\\"]
    argv = [a.replace('"$TF_WORKERS"', "2") for a in argv]
    args, extra = build_parser().parse_known_args(argv)
    assert (
        args.runner == "flink"
        and args.flink_master == "flink-jobmanager:8081"
        and extra == ["--environment_config=localhost:50000"]
    )
    assert "distribution=multi_worker" in args.param
    assert "python -m components.trainer.worker --spec" in script


def test_image_holds_every_package_the_project_installs():
    with open(os.path.join(K8S, "Dockerfile")) as f:
        dockerfile = f.read()
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        packages = re.search(r"include = \[(.*?)\]", f.read()).group(1)
    for package in re.findall(r'"(\w+)\*"', packages):
        assert f"COPY {package} {package}" in dockerfile
