"""A Flink session cluster on this machine, for Beam's portable runner.

`python -m cluster.flink up` (`make flink-up`) starts, on 127.0.0.1:

- a Flink JobManager and N TaskManagers (default 2), separate JVMs, from the
  pinned Flink distribution (cluster/downloads.py);
- Beam's Python SDK worker pool (EXTERNAL environment) beside them, whose
  workers install each job's staged packages (cluster/beam_boot.py);
- Beam's Flink job server, which turns Beam jobs into Flink jobs.

Everything it starts is recorded by pid in `<state-dir>/cluster.json`, logs go
to `<state-dir>/logs/`; `down` stops exactly those processes. `up` on a running
cluster starts only what is missing (a TaskManager that died, say).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from cluster import downloads
from cluster.processes import alive, cmdline, free_port, free_ports, quiet_python_env

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_STATE_DIR = os.environ.get("FLINK_STATE_DIR") or os.path.join(REPO_ROOT, ".flink")
STATE_FILE = "cluster.json"

# What Flink's own scripts pass on Java 17 (env.java.opts.all in Flink 1.18's default config).
JAVA17_FLAGS = [
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    *(
        f"--add-opens=java.base/{package}=ALL-UNNAMED"
        for package in (
            "java.lang",
            "java.net",
            "java.io",
            "java.nio",
            "sun.nio.ch",
            "java.lang.reflect",
            "java.text",
            "java.time",
            "java.util",
            "java.util.concurrent",
            "java.util.concurrent.atomic",
            "java.util.concurrent.locks",
            "java.lang.invoke",
            "java.math",
            "java.security",
        )
    ),
]

LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
appender.main.name = MainAppender
appender.main.type = File
appender.main.append = true
appender.main.fileName = ${sys:log.file}
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
logger.akka.name = akka
logger.akka.level = WARN
"""


class ClusterError(RuntimeError):
    pass


@dataclasses.dataclass
class ClusterConfig:
    host: str = "127.0.0.1"
    rest_port: int = 8081
    rpc_port: int = 6123
    job_port: int = 8099
    artifact_port: int = 8098
    expansion_port: int = 8097
    worker_pool_port: int = 50000
    taskmanagers: int = 2
    slots: int = 2
    parallelism: int = 2
    jobmanager_memory: str = "1024m"
    # Task heap is what is left of this after managed, network, off-heap and the JVM's own: ~1.7 GB.
    # Beam's data plane buffers up to 100 of the Python worker's 10 MB output messages per task
    # there; at 2560m (320 MB of task heap) a 60,000-captcha ExampleGen ran out of heap.
    taskmanager_memory: str = "4096m"
    managed_memory: str = "768m"
    restart_attempts: int = 3
    # A job that loses a TaskManager is restarted whole ("full" failover) after this delay. Before, with
    # Flink's default region failover, the job went from RESTARTING to FAILED within 40 ms of the loss
    # ("Recovery is suppressed": its three attempts used up by the tasks lost with it); the delay leaves
    # the JobManager time to drop the dead TaskManager (attempts x delay > heartbeat.timeout).
    restart_delay_s: int = 10

    @classmethod
    def on_free_ports(cls, **settings) -> "ClusterConfig":
        """A cluster beside any other on this host: every port one the system has free now."""
        names = ("rest_port", "rpc_port", "job_port", "artifact_port", "expansion_port", "worker_pool_port")
        ports = dict(zip(names, free_ports(len(names), settings.get("host", cls.host))))
        return cls(**{**ports, **settings})

    @property
    def web_ui(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def flink_master(self) -> str:
        return f"{self.host}:{self.rest_port}"

    @property
    def job_endpoint(self) -> str:
        return f"{self.host}:{self.job_port}"

    @property
    def worker_pool(self) -> str:
        return f"{self.host}:{self.worker_pool_port}"


def beam_jars_for_taskmanagers(job_server_classpath: str) -> list[str]:
    """Beam's job-server jars, less Flink's and the logging jars Flink brings, for a TaskManager's classpath.

    A Beam job runs each stage of its plan as a Flink task that asks the TaskManager for a Python SDK
    worker. Beam keeps that worker for the job's next stage (`--environment_cache_millis`) only when
    its runner classes come from Flink's own class loader: loaded from the job's jar (Flink's default,
    child-first) it stops the worker after every stage, and a 600-captcha ExampleGen started seven
    workers one after another, each importing TensorFlow. With these jars on the classpath and
    `classloader.resolve-order: parent-first`, one worker per TaskManager serves the whole job."""
    lib = os.path.dirname(job_server_classpath)
    skip = ("flink-", "log4j-", "slf4j-")
    return sorted(os.path.join(lib, f) for f in os.listdir(lib) if f.endswith(".jar") and not f.startswith(skip))


def flink_conf(config: ClusterConfig) -> str:
    """The cluster's flink-conf.yaml: flink_settings, one `key: value` a line."""
    return "".join(f"{key}: {value}\n" for key, value in flink_settings(config).items())


def flink_settings(config: ClusterConfig) -> dict[str, str]:
    """Every Flink setting `up` writes for `config` (flink-conf.yaml's keys and values, as text)."""
    settings = {
        "jobmanager.rpc.address": config.host,
        "jobmanager.rpc.port": config.rpc_port,
        "jobmanager.bind-host": config.host,
        "jobmanager.memory.process.size": config.jobmanager_memory,
        "taskmanager.bind-host": config.host,
        "taskmanager.host": config.host,
        "taskmanager.rpc.port": 0,
        "taskmanager.data.port": 0,
        "taskmanager.memory.process.size": config.taskmanager_memory,
        # Flink's batch operators sort and combine in managed memory, shared by every operator of a
        # slot; TFDV's statistics job has dozens, and each needs room for a whole image record.
        "taskmanager.memory.managed.size": config.managed_memory,
        # The data plane to Beam's Python workers is gRPC on direct buffers: without room for
        # them a large bundle fails the task ("OutOfMemoryError: Direct buffer memory").
        "taskmanager.memory.task.off-heap.size": "512m",
        "taskmanager.numberOfTaskSlots": config.slots,
        # Beam's batch jobs have many shuffles; Flink 1.16's sort-shuffle asks 512 buffers per
        # result partition by default, more than a small TaskManager has.
        "taskmanager.memory.network.min": "192mb",
        "taskmanager.memory.network.max": "192mb",
        "taskmanager.network.sort-shuffle.min-buffers": 64,
        # TFDV's and tf.Transform's combiner accumulators can exceed a sort buffer: spill them
        # instead of failing with "Record too large".
        "taskmanager.runtime.large-record-handler": "true",
        "parallelism.default": config.parallelism,
        # Beam's runner classes from the TaskManager's own classpath (beam_jars_for_taskmanagers),
        # not from the job's jar: only then does a TaskManager keep a job's Python SDK worker
        # between the job's stages (--environment_cache_millis, pipelines/engines.py).
        "classloader.resolve-order": "parent-first",
        "rest.address": config.host,
        "rest.bind-address": config.host,
        "rest.port": config.rest_port,
        "blob.server.port": 0,
        "query.server.port": 0,
        # A TaskManager lost mid-job: Flink restarts the job on the slots that are left.
        "restart-strategy": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": config.restart_attempts,
        "restart-strategy.fixed-delay.delay": f"{config.restart_delay_s} s",
        "jobmanager.execution.failover-strategy": "full",  # see ClusterConfig.restart_delay_s
        # An error in a thread Flink does not own (the OutOfMemoryError above hit a gRPC thread of
        # Beam's data plane) would leave its task waiting forever: end the TaskManager instead, so
        # the restart strategy or the job's failure takes over.
        "cluster.uncaught-exception-handling": "FAIL",
        "heartbeat.timeout": 20000,
        "heartbeat.interval": HEARTBEAT_INTERVAL_MS,
        "slot.request.timeout": 60000,
    }
    return {key: str(value) for key, value in settings.items()}


# --- process bookkeeping ---------------------------------------------------------------------------------------


def _ours(pid: int | None, marker: str) -> bool:
    """Alive and still the process we started (a recycled pid is not ours)."""
    return alive(pid) and marker in cmdline(pid)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_for_port(host: str, port: int, process: subprocess.Popen, timeout: float) -> bool:
    """True once `host:port` accepts connections; False if `process` exits or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


def rest_get_url(base_url: str, path: str, timeout: float = 2.0) -> dict | None:
    """GET a Flink REST resource as JSON; None when nothing (or no JSON) answers."""
    try:
        with urllib.request.urlopen(f"{base_url}{path}", timeout=timeout) as response:
            return json.load(response)
    except (OSError, ValueError, urllib.error.URLError):
        return None


def rest_get(config: ClusterConfig, path: str, timeout: float = 2.0) -> dict | None:
    return rest_get_url(config.web_ui, path, timeout)


HEARTBEAT_INTERVAL_MS = 5000  # heartbeat.interval in the cluster's configuration


def _live_taskmanagers(listing: dict | None, max_age_ms: float) -> int | None:
    """How many TaskManagers of a /taskmanagers answer sent a heartbeat within `max_age_ms`; None when
    the answer says nothing about heartbeats. (Flink names the field timeSinceLastHeartbeat but fills
    it with the heartbeat's epoch milliseconds.)"""
    if not listing or "taskmanagers" not in listing:
        return None
    now_ms = time.time() * 1000
    ages = []
    for tm in listing["taskmanagers"]:
        value = tm.get("timeSinceLastHeartbeat")
        if value is None:
            return None
        ages.append(now_ms - value if value > 1e12 else value)
    return sum(1 for age in ages if age <= max_age_ms)


class JobServer:
    """Beam's Flink job server for one run, pointed at an existing cluster's REST address."""

    def __init__(self, flink_master: str, host: str = "127.0.0.1", log_dir: str | None = None) -> None:
        self.flink_master = flink_master
        self.host = host
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.port = 0

    def start(self, timeout: float = 90.0) -> str:
        classpath = downloads.job_server_classpath()
        self.port = free_port(self.host)
        log = open(os.path.join(self.log_dir, "job-server.out"), "ab") if self.log_dir else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                "java",
                *JAVA17_FLAGS,
                "-Xmx768m",
                "-cp",
                classpath,
                downloads.JOB_SERVER_MAIN,
                f"--flink-master={self.flink_master}",
                f"--job-host={self.host}",
                f"--job-port={self.port}",
                f"--artifact-port={free_port(self.host)}",
                f"--expansion-port={free_port(self.host)}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        if not wait_for_port(self.host, self.port, self.process, timeout):
            self.stop()
            raise ClusterError(f"Beam's job server for {self.flink_master} did not start")
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class FlinkCluster:
    """Start, inspect and stop the processes of one local cluster (state in `state_dir`)."""

    def __init__(self, state_dir: str = DEFAULT_STATE_DIR, config: ClusterConfig | None = None, out=None) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.out = out or sys.stdout
        self.state = self._load()
        if config is not None:
            self.config = config
        elif "config" in self.state and any(self.running(name) for name in self.processes()):
            self.config = ClusterConfig(**self.state["config"])  # the settings of the running cluster
        else:
            self.config = ClusterConfig()

    # state ---------------------------------------------------------------------------------------------------
    @property
    def logs_dir(self) -> str:
        return os.path.join(self.state_dir, "logs")

    @property
    def tmp_dir(self) -> str:
        """Flink's io.tmp.dirs and every process's temporary directory, removed by `down`.

        In /tmp they outlived the cluster: a TaskManager started with its own resource id keeps its
        working directory (the blobs of each job, 0.6-1 GB) for local recovery, and a killed
        process deletes nothing."""
        return os.path.join(self.state_dir, "tmp")

    def _load(self) -> dict:
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(self.state_dir, STATE_FILE)) as f:
                return json.load(f)
        return {}

    def _save(self) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        path = os.path.join(self.state_dir, STATE_FILE)
        with open(path + ".tmp", "w") as f:
            json.dump({**self.state, "config": dataclasses.asdict(self.config)}, f, indent=2)
        os.replace(path + ".tmp", path)

    def _say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def processes(self) -> dict[str, dict]:
        return self.state.setdefault("processes", {})

    def running(self, name: str) -> bool:
        entry = self.processes().get(name)
        return bool(entry) and _ours(entry["pid"], entry["marker"])

    # starting ------------------------------------------------------------------------------------------------
    def _spawn(
        self, name: str, command: list[str], marker: str, env: dict | None = None, resource_id: str | None = None
    ) -> int:
        os.makedirs(self.logs_dir, exist_ok=True)
        log_path = os.path.join(self.logs_dir, f"{name}.out")
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.state_dir,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # outlives `make flink-up`; Ctrl-C in that shell does not reach it
            )
        self.processes()[name] = {"pid": process.pid, "marker": marker, "log": log_path}
        if resource_id is not None:
            self.processes()[name]["resource_id"] = resource_id
        self._save()
        return process.pid

    def _write_conf(self) -> str:
        conf_dir = os.path.join(self.state_dir, "conf")
        os.makedirs(conf_dir, exist_ok=True)
        with open(os.path.join(conf_dir, "flink-conf.yaml"), "w") as f:
            f.write(flink_conf(self.config))
        with open(os.path.join(conf_dir, "log4j.properties"), "w") as f:
            f.write(LOG4J)
        return conf_dir

    @staticmethod
    def _resource_params(home: str, conf_dir: str, which: str) -> tuple[list[str], list[str]]:
        """JVM flags and dynamic properties as Flink's scripts compute them (BashJavaUtils)."""
        classpath = os.path.join(home, "bin", "bash-java-utils.jar") + os.pathsep + os.path.join(home, "lib", "*")
        done = subprocess.run(
            [
                "java",
                "-cp",
                classpath,
                "org.apache.flink.runtime.util.bash.BashJavaUtils",
                which,
                "--configDir",
                conf_dir,
            ],
            capture_output=True,
            text=True,
        )
        results = [
            line.split(":", 1)[1]
            for line in done.stdout.splitlines()
            if line.startswith("BASH_JAVA_UTILS_EXEC_RESULT:")
        ]
        if done.returncode != 0 or len(results) < 2:
            reasons = [
                line for line in (done.stdout + done.stderr).splitlines() if "IllegalConfigurationException" in line
            ]
            raise ClusterError(
                f"Flink refuses the memory settings ({which}): {(reasons or [done.stderr.strip()[-300:]])[-1]}"
            )
        return results[0].split(), results[1].split()

    def _java(
        self,
        home: str,
        conf_dir: str,
        name: str,
        main: str,
        jvm: list[str],
        args: list[str],
        extra_classpath: Sequence[str] = (),
    ) -> list[str]:
        return [
            "java",
            *JAVA17_FLAGS,
            *jvm,
            f"-Dlog.file={os.path.join(self.logs_dir, name + '.log')}",
            f"-Dlog4j.configurationFile=file:{os.path.join(conf_dir, 'log4j.properties')}",
            f"-Dflink.cluster.state={self.state_dir}",
            f"-Djava.io.tmpdir={self.tmp_dir}",
            "-cp",
            os.pathsep.join([os.path.join(home, "lib", "*"), *extra_classpath]),
            main,
            "--configDir",
            conf_dir,
            *args,
            "-D",
            f"io.tmp.dirs={self.tmp_dir}",
        ]

    def _boot_executable(self) -> str:
        """The worker pool's container executable: this interpreter running beam_boot.py by path."""
        path = os.path.join(self.state_dir, "beam-boot")
        boot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "beam_boot.py")
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\nexec "{sys.executable}" "{boot}" "$@"\n')
        os.chmod(path, 0o755)
        return path

    def _check_ports_free(self, wanted: list[tuple[str, int]]) -> None:
        for name, port in wanted:
            if not self.running(name) and port_open(self.config.host, port):
                raise ClusterError(
                    f"{self.config.host}:{port} (for the {name}) is taken by another program; "
                    "stop it, or run `make flink-down` if it is an earlier cluster"
                )

    def up(self, timeout: float = 180.0) -> None:
        config = self.config
        if shutil.which("java") is None:
            raise ClusterError("Java is needed for Flink: apt-get install openjdk-17-jre-headless")
        self._check_ports_free(
            [
                ("jobmanager", config.rest_port),
                ("job-server", config.job_port),
                ("worker-pool", config.worker_pool_port),
            ]
        )
        home = downloads.flink_home()
        job_server_cp = downloads.job_server_classpath()
        os.makedirs(self.logs_dir, exist_ok=True)
        os.makedirs(self.tmp_dir, exist_ok=True)
        conf_dir = self._write_conf()
        started = []
        marker = f"-Dflink.cluster.state={self.state_dir}"
        # Both computed before anything starts: a bad memory setting starts nothing.
        jm_jvm, jm_props = self._resource_params(home, conf_dir, "GET_JM_RESOURCE_PARAMS")
        tm_jvm, tm_props = self._resource_params(home, conf_dir, "GET_TM_RESOURCE_PARAMS")

        if not self.running("jobmanager"):
            jvm, props = jm_jvm, jm_props
            self._spawn(
                "jobmanager",
                self._java(
                    home,
                    conf_dir,
                    "jobmanager",
                    "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
                    jvm,
                    props,
                ),
                marker,
            )
            started.append("jobmanager")
        beam_jars = beam_jars_for_taskmanagers(job_server_cp)
        for index in range(1, config.taskmanagers + 1):
            name = f"taskmanager-{index}"
            if not self.running(name):
                jvm, props = tm_jvm, tm_props
                # A new id each start: the JobManager still holds a killed TaskManager's registration
                # until its heartbeat times out, and that timeout must not unregister the replacement.
                resource_id = f"{name}-{int(time.time())}"
                self._spawn(
                    name,
                    self._java(
                        home,
                        conf_dir,
                        name,
                        "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
                        jvm,
                        [*props, "-D", f"taskmanager.resource-id={resource_id}"],
                        beam_jars,
                    ),
                    marker,
                    resource_id=resource_id,
                )
                started.append(name)
        if not self.running("worker-pool"):
            pool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker_pool.py")
            workers_dir = os.path.join(self.state_dir, "workers")
            self._spawn(
                "worker-pool",
                [
                    sys.executable,
                    pool,
                    "--host",
                    config.host,
                    "--port",
                    str(config.worker_pool_port),
                    "--container_executable",
                    self._boot_executable(),
                ],
                pool,
                env={
                    "BEAM_WORKER_DIR": workers_dir,
                    "PYTHONUNBUFFERED": "1",
                    "TMPDIR": self.tmp_dir,
                    **quiet_python_env(),
                },
            )
            started.append("worker-pool")
        if not self.running("job-server"):
            self._spawn(
                "job-server",
                [
                    "java",
                    *JAVA17_FLAGS,
                    "-Xmx768m",
                    marker,
                    f"-Djava.io.tmpdir={self.tmp_dir}",
                    "-cp",
                    job_server_cp,
                    downloads.JOB_SERVER_MAIN,
                    f"--flink-master={config.flink_master}",
                    f"--job-host={config.host}",
                    f"--job-port={config.job_port}",
                    f"--artifact-port={config.artifact_port}",
                    f"--expansion-port={config.expansion_port}",
                    f"--artifacts-dir={os.path.join(self.state_dir, 'artifacts')}",
                ],
                marker,
            )
            started.append("job-server")
        self._say(f"starting: {', '.join(started)}" if started else "cluster already running")
        self.wait_ready(timeout)
        self._say(
            f"Flink {downloads.FLINK_VERSION} session cluster ready: {config.taskmanagers} TaskManagers, "
            f"{config.taskmanagers * config.slots} slots\n"
            f"  Flink web UI:    {config.web_ui}\n"
            f"  Beam job server: {config.job_endpoint}  (python -m pipelines run captcha --runner flink)\n"
            f"  worker pool:     {config.worker_pool}\n"
            f"  logs:            {self.logs_dir}"
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            problems = self.problems()
            if not problems:
                return
            dead = [name for name in self.processes() if not self.running(name)]
            if dead:
                logs = ", ".join(self.processes()[n]["log"] for n in dead)
                raise ClusterError(f"{', '.join(dead)} exited during start-up; see {logs}")
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"cluster not ready after {timeout:.0f}s: {'; '.join(problems)}; logs in {self.logs_dir}"
                )
            time.sleep(1.0)

    def problems(self) -> list[str]:
        """What keeps the cluster from taking jobs (empty when it is ready)."""
        config = self.config
        found = []
        overview = rest_get(config, "/overview")
        if overview is None:
            found.append(f"no Flink REST API at {config.web_ui}")
        elif overview.get("taskmanagers", 0) < config.taskmanagers:
            found.append(f"{overview.get('taskmanagers', 0)} of {config.taskmanagers} TaskManagers registered")
        else:
            listing = rest_get(config, "/taskmanagers")
            # A TaskManager killed a moment ago still counts as registered until its heartbeat times
            # out (heartbeat.timeout), and still looks alive for a heartbeat interval: the cluster is
            # ready only once every TaskManager process this cluster started has registered under its
            # own id, and only TaskManagers heard from lately count.
            registered = {tm.get("id") for tm in (listing or {}).get("taskmanagers", [])}
            for name, process in sorted(self.processes().items()):
                if process.get("resource_id") and process["resource_id"] not in registered:
                    found.append(f"{name} ({process['resource_id']}) not registered with the JobManager yet")
            alive = _live_taskmanagers(listing, HEARTBEAT_INTERVAL_MS * 2)
            if alive is not None and alive < config.taskmanagers:
                found.append(
                    f"{alive} of {config.taskmanagers} TaskManagers alive (the others missed their heartbeats)"
                )
        if not port_open(config.host, config.job_port):
            found.append(f"no job server at {config.job_endpoint}")
        if not port_open(config.host, config.worker_pool_port):
            found.append(f"no worker pool at {config.worker_pool}")
        return found

    # stopping ------------------------------------------------------------------------------------------------
    def stop_process(self, name: str, sig: int = signal.SIGTERM, wait: float = 15.0) -> bool:
        entry = self.processes().get(name)
        if not entry or not _ours(entry["pid"], entry["marker"]):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(entry["pid"], sig)
        deadline = time.monotonic() + wait
        while alive(entry["pid"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(entry["pid"]):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(entry["pid"], signal.SIGKILL)
        return True

    def down(self) -> None:
        order = (
            ["job-server", "worker-pool"]
            + sorted(n for n in self.processes() if n.startswith("taskmanager"))
            + ["jobmanager"]
        )
        stopped = [name for name in order if self.stop_process(name)]
        self.state["processes"] = {}
        self._save()
        # What the jobs left: each worker's install of a staged wheel, the job server's staged files,
        # the processes' temporary files (a TaskManager's job blobs among them).
        for leftover in ("workers", "artifacts", "tmp"):
            shutil.rmtree(os.path.join(self.state_dir, leftover), ignore_errors=True)
        self._say(f"stopped: {', '.join(stopped)}" if stopped else "no cluster processes were running")

    def status(self) -> int:
        for name, entry in sorted(self.processes().items()):
            state = "running" if self.running(name) else "not running"
            self._say(f"{name:<14} pid {entry['pid']:<8} {state}")
        problems = self.problems()
        if problems:
            self._say("not ready: " + "; ".join(problems))
            return 1
        overview = rest_get(self.config, "/overview") or {}
        self._say(
            f"ready: {overview.get('taskmanagers')} TaskManagers, {overview.get('slots-total')} slots, "
            f"jobs finished {overview.get('jobs-finished')}, failed {overview.get('jobs-failed')}, "
            f"running {overview.get('jobs-running')}; web UI {self.config.web_ui}"
        )
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.flink", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "fetch"])
    parser.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, help="pids, config and logs (default .flink/, or $FLINK_STATE_DIR)"
    )
    parser.add_argument("--taskmanagers", type=int, default=None, help="TaskManager processes (default 2)")
    parser.add_argument("--slots", type=int, default=None, help="task slots per TaskManager (default 2)")
    parser.add_argument("--rest-port", type=int, default=None, help="Flink web UI / REST port (default 8081)")
    parser.add_argument("--job-port", type=int, default=None, help="Beam job server port (default 8099)")
    parser.add_argument("--worker-pool-port", type=int, default=None, help="Beam worker pool port (default 50000)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the cluster to be ready")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(downloads.flink_home())
            print(downloads.job_server_classpath())
            return 0
        cluster = FlinkCluster(args.state_dir)
        if args.command == "up":
            overrides = {
                k: v
                for k, v in {
                    "taskmanagers": args.taskmanagers,
                    "slots": args.slots,
                    "rest_port": args.rest_port,
                    "job_port": args.job_port,
                    "worker_pool_port": args.worker_pool_port,
                }.items()
                if v is not None
            }
            if overrides:
                if any(cluster.running(n) for n in cluster.processes()):
                    current = dataclasses.asdict(cluster.config)
                    changed = {k: v for k, v in overrides.items() if current[k] != v}
                    if changed:
                        raise ClusterError(
                            f"a cluster is running with other settings ({changed}); run `make flink-down` first"
                        )
                cluster.config = dataclasses.replace(cluster.config, **overrides)
            cluster.up(timeout=args.timeout)
            return 0
        if args.command == "down":
            cluster.down()
            return 0
        return cluster.status()
    except (ClusterError, downloads.DownloadError) as error:
        print(f"flink: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
