"""Which engine runs the Beam components: `--runner flink` turned into Beam's own options.

`--runner flink` runs every Beam component on a Flink session cluster through
Beam's portable runner:

- without `--flink-master`: the cluster `make flink-up` started (its job
  server, worker pool and state in `.flink/`);
- with `--flink-master HOST:PORT` (an existing cluster's REST address): a Beam
  job server is started for the run, pointed at it; the SDK workers are the
  worker pool at `--environment_config` (default `localhost:50000`, a worker
  pool beside each TaskManager, as the Kubernetes manifests in cluster/k8s run
  it).

The project's code reaches the workers as a wheel built from this checkout
and staged with `--extra_package`, as it would reach a remote cluster. Any
other runner name and every other Beam option pass through untouched.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLINK = "flink"
DEFAULT_REMOTE_WORKER_POOL = "localhost:50000"
ENVIRONMENT_CACHE_MS = 10_000  # how long a TaskManager keeps a job's idle SDK worker for its next stage
READY_GRACE_S = 60.0  # how long a started local cluster may take to (re)register its TaskManagers


class EngineUnavailable(RuntimeError):
    """The engine asked for cannot take jobs; the message says what to do."""


def _has_option(args: list[str], name: str) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in args)


def build_project_wheel(out_dir: str) -> str:
    """A wheel of this checkout (components, pipelines, serving), without its dependencies."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--disable-pip-version-check",
        "--wheel-dir",
        out_dir,
        REPO_ROOT,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = [f for f in os.listdir(out_dir) if f.endswith(".whl")] if done.returncode == 0 else []
    if len(wheels) != 1:
        raise EngineUnavailable(f"could not build the project's wheel for the workers: {done.stderr.strip()[-300:]}")
    # setuptools leaves build/ in the checkout; it is not ours to keep.
    shutil.rmtree(os.path.join(REPO_ROOT, "build"), ignore_errors=True)
    return os.path.join(out_dir, wheels[0])


def _staged_wheel() -> str:
    out_dir = tempfile.mkdtemp(prefix="tfx-monorepo-wheel-")
    atexit.register(shutil.rmtree, out_dir, True)
    return build_project_wheel(out_dir)


def flink_args(flink_master: str | None, extra: list[str], state_dir: str | None = None, out=None) -> list[str]:
    """Beam options that send jobs to Flink; raises EngineUnavailable when no cluster answers."""
    from cluster.flink import DEFAULT_STATE_DIR, ClusterError, FlinkCluster, JobServer, rest_get_url

    out = out or sys.stderr
    local = FlinkCluster(state_dir or DEFAULT_STATE_DIR, out=out)
    if flink_master is None:
        problems = local.problems()
        if problems and local.processes() and all(local.running(name) for name in local.processes()):
            # Our cluster's processes all run but it is not ready: a TaskManager restarted a moment ago
            # is still registering. Wait a little rather than refuse.
            print(f"Flink: waiting for the cluster ({'; '.join(problems)})", file=out, flush=True)
            with contextlib.suppress(ClusterError):  # still not ready: refused below with what is wrong
                local.wait_ready(READY_GRACE_S)
            problems = local.problems()
        if problems:
            raise EngineUnavailable(
                f"no Flink cluster ready at {local.config.web_ui} ({'; '.join(problems)}): run `make flink-up` first, "
                "or give --flink-master HOST:PORT for an existing cluster"
            )
        job_endpoint, worker_pool = local.config.job_endpoint, local.config.worker_pool
        parallelism = local.config.parallelism
        print(f"Flink: jobs go to {job_endpoint} (web UI {local.config.web_ui})", file=out, flush=True)
    else:
        overview = rest_get_url(f"http://{flink_master}", "/overview")
        if overview is None:
            raise EngineUnavailable(f"no Flink REST API answers at {flink_master} (--flink-master HOST:PORT)")
        parallelism = cluster_parallelism(flink_master, overview)
        server = JobServer(flink_master)
        job_endpoint = server.start()
        atexit.register(server.stop)
        worker_pool = local.config.worker_pool if local.running("worker-pool") else DEFAULT_REMOTE_WORKER_POOL
        print(f"Flink: jobs go to {flink_master} through a job server at {job_endpoint}", file=out, flush=True)
    args = [
        "--runner=PortableRunner",
        f"--job_endpoint={job_endpoint}",
        "--environment_type=EXTERNAL",
        f"--environment_config={worker_pool}",
        # Flink's default pipelined exchanges deadlock on diamond-shaped batch plans (ExampleGen's
        # three split writes) once the data outgrows the network buffers: 60k captchas hung with
        # every task idle. BATCH_FORCED materialises each exchange (Java FlinkPipelineOptions;
        # Python has no flag for it, the portable runner passes it through).
        "--execution_mode_for_batch=BATCH_FORCED",
    ]
    # One Python SDK worker per TaskManager for the whole job instead of one per stage, each importing
    # TensorFlow (cluster/flink.py, beam_jars_for_taskmanagers): the house-price validation job
    # 105 s -> 42 s. A TaskManager whose Beam classes come from the job's jar ignores it.
    if not _has_option(extra, "environment_cache_millis"):
        args.append(f"--environment_cache_millis={ENVIRONMENT_CACHE_MS}")
    # Beam's job server reads no Flink configuration: without --parallelism every job runs at 1.
    if not _has_option(extra, "parallelism"):
        args.append(f"--parallelism={parallelism}")
    if not (_has_option(extra, "extra_package") or _has_option(extra, "setup_file")):
        args.append(f"--extra_package={_staged_wheel()}")
    return args


def cluster_parallelism(flink_master: str, overview: dict) -> int:
    """The cluster's own `parallelism.default`, else every slot it has (at least 1)."""
    from cluster.flink import rest_get_url

    entries = rest_get_url(f"http://{flink_master}", "/jobmanager/config") or []
    configured = {e.get("key"): e.get("value") for e in entries if isinstance(e, dict)}.get("parallelism.default")
    try:
        return max(1, int(configured))
    except (TypeError, ValueError):
        return max(1, int(overview.get("slots-total") or 1))


def beam_args(runner: str | None, flink_master: str | None, extra: list[str]) -> list[str]:
    """The Beam options for every Beam component of a run; the user's own options come last and win."""
    if flink_master is not None and (runner or "").lower() != FLINK:
        raise EngineUnavailable("--flink-master goes with --runner flink")
    if runner is not None and runner.lower() == FLINK:
        return flink_args(flink_master, extra) + extra
    return ([f"--runner={runner}"] if runner else []) + extra


def module_origin(name: str) -> str:
    """Where `name` is imported from in this process; run on workers, it shows which copy of the code they run."""
    import importlib

    return importlib.import_module(name).__file__ or ""
