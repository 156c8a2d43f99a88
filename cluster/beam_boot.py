"""Beam's SDK container contract without a container: what a Python worker runs at start.

Beam's Docker image starts every SDK worker through a `boot` program that
asks the runner's provision service for the pipeline options and the staged
files, installs the staged packages (`--extra_package`, `--setup_file`'s
`workflow.tar.gz`) and then runs the SDK harness. Docker does not run on these
machines, so the worker pool (`cluster/worker_pool.py`) runs this file in its
place, with the same arguments (`--id`, `--provision_endpoint`,
`--artifact_endpoint`, `--control_endpoint`, `--logging_endpoint`).

The project's code reaches the worker only this way: the harness starts with
the submitting checkout's editable install switched off, so a worker on
another host behaves the same as one beside the driver.

This file is run by path and imports nothing from the project.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import grpc
from apache_beam.portability import common_urns
from apache_beam.portability.api import (
    beam_artifact_api_pb2,
    beam_artifact_api_pb2_grpc,
    beam_provision_api_pb2,
    beam_provision_api_pb2_grpc,
    beam_runner_api_pb2,
)
from google.protobuf import json_format

STAGING_ROLE = common_urns.artifact_roles.STAGING_TO.urn
EXTRA_PACKAGES_FILE = "extra_packages.txt"
SETUP_PACKAGE = "workflow.tar.gz"

# Started in place of `python -m apache_beam.runners.worker.sdk_worker_main`:
# drop the editable install of the submitting checkout, put the staged
# packages first, then run the harness.
HARNESS = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks if not getattr(h, "__module__", "").startswith("__editable__")]
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
sys.path.insert(0, sys.argv[1])
from apache_beam.runners.worker import sdk_worker_main
sdk_worker_main.main(sys.argv)
"""


def _log(message: str) -> None:
    print(f"beam_boot: {message}", file=sys.stderr, flush=True)


def _staged_name(artifact: beam_runner_api_pb2.ArtifactInformation) -> str:
    if artifact.role_urn != STAGING_ROLE:
        raise RuntimeError(f"unsupported artifact role {artifact.role_urn}")
    payload = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(artifact.role_payload)
    name = os.path.basename(payload.staged_name)
    if not name or name in (".", ".."):
        raise RuntimeError(f"unusable staged name {payload.staged_name!r}")
    return name


def fetch_artifacts(endpoint: str, dependencies, dest: str) -> dict[str, str]:
    """Every staged file through the runner's artifact retrieval service -> {staged name: path}."""
    channel = grpc.insecure_channel(endpoint, options=[("grpc.max_receive_message_length", 64 << 20)])
    stub = beam_artifact_api_pb2_grpc.ArtifactRetrievalServiceStub(channel)
    resolved = stub.ResolveArtifacts(beam_artifact_api_pb2.ResolveArtifactsRequest(artifacts=dependencies)).replacements
    paths = {}
    for artifact in resolved:
        name = _staged_name(artifact)
        path = os.path.join(dest, name)
        with open(path, "wb") as out:
            for chunk in stub.GetArtifact(beam_artifact_api_pb2.GetArtifactRequest(artifact=artifact)):
                out.write(chunk.data)
        paths[name] = path
    channel.close()
    return paths


def packages_to_install(paths: dict[str, str]) -> list[str]:
    """In Beam's boot order: the extra packages as listed, then the setup file's sdist."""
    ordered = []
    if EXTRA_PACKAGES_FILE in paths:
        with open(paths[EXTRA_PACKAGES_FILE]) as f:
            for line in f:
                name = os.path.basename(line.strip())
                if name:
                    if name not in paths:
                        raise RuntimeError(f"{EXTRA_PACKAGES_FILE} names {name}, which was not staged")
                    ordered.append(paths[name])
    if SETUP_PACKAGE in paths:
        ordered.append(paths[SETUP_PACKAGE])
    return ordered


def install(packages: list[str], cache_root: str) -> str:
    """Install once per distinct set of packages (keyed by content); concurrent workers wait on a lock."""
    digest = hashlib.sha256()
    for path in packages:
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    target = os.path.join(cache_root, f"site-{digest.hexdigest()[:16]}")
    os.makedirs(cache_root, exist_ok=True)
    with open(target + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isfile(os.path.join(target, ".complete")):
            return target
        staging = tempfile.mkdtemp(dir=cache_root, prefix="site-")
        if packages:
            command = [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-index",
                "--no-build-isolation",
                "--disable-pip-version-check",
                "--target",
                staging,
                *packages,
            ]
            _log(f"installing {', '.join(os.path.basename(p) for p in packages)}")
            subprocess.run(command, check=True, stdout=sys.stderr)
        open(os.path.join(staging, ".complete"), "w").close()
        subprocess.run(["rm", "-rf", target], check=True)
        os.replace(staging, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--id", required=True)
    parser.add_argument("--provision_endpoint", required=True)
    parser.add_argument("--artifact_endpoint", required=True)
    parser.add_argument("--control_endpoint", required=True)
    parser.add_argument("--logging_endpoint", required=True)
    parser.add_argument("--semi_persist_dir", default=None)
    args, _ = parser.parse_known_args(argv)

    channel = grpc.insecure_channel(args.provision_endpoint)
    provision = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
    info = provision.GetProvisionInfo(
        beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[("worker_id", args.id)]
    ).info
    channel.close()

    work_root = os.environ.get("BEAM_WORKER_DIR") or os.path.join(tempfile.gettempdir(), "beam-workers")
    # Ids are unique per TaskManager only: two TaskManagers sharing a pool both start a "1-1".
    worker_dir = os.path.join(work_root, "workers", f"{args.id}-{os.getpid()}")
    staged_dir = os.path.join(worker_dir, "staged")
    os.makedirs(staged_dir, exist_ok=True)
    paths = fetch_artifacts(args.artifact_endpoint, info.dependencies, staged_dir)
    site = install(packages_to_install(paths), os.path.join(work_root, "installed"))

    def descriptor(url: str) -> str:
        return f'url: "{url}"'

    control = info.control_endpoint.url or args.control_endpoint
    logging_url = info.logging_endpoint.url or args.logging_endpoint
    env = dict(os.environ)
    env.update(
        WORKER_ID=args.id,
        PIPELINE_OPTIONS=json.dumps(json_format.MessageToDict(info.pipeline_options)),
        CONTROL_API_SERVICE_DESCRIPTOR=descriptor(control),
        LOGGING_API_SERVICE_DESCRIPTOR=descriptor(logging_url),
        SEMI_PERSISTENT_DIRECTORY=args.semi_persist_dir or worker_dir,
        RUNNER_CAPABILITIES=" ".join(info.runner_capabilities),
        BEAM_STAGED_SITE=site,
    )
    env.pop("PYTHONPATH", None)
    if info.HasField("status_endpoint"):
        env["STATUS_API_SERVICE_DESCRIPTOR"] = descriptor(info.status_endpoint.url)
    # The pool never reads our stdout; the harness writes only to stderr.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    os.chdir(worker_dir)
    os.execve(sys.executable, [sys.executable, "-c", HARNESS, site], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
