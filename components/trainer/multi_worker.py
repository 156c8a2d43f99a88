"""The Trainer on several TensorFlow workers (MultiWorkerMirroredStrategy over TF_CONFIG).

`workers=N` starts N worker processes (components/trainer/worker.py) that
talk over the network. Where this machine allows it (root, `ip netns`), each
worker runs in a network namespace of its own, with its own address on a
switch namespace: N hosts on one machine, their traffic on a real (virtual)
network. Elsewhere they are N processes on 127.0.0.1. With TF_CONFIG already
in the environment, the Trainer runs only the task TF_CONFIG names and the
other hosts run `python -m components.trainer.worker --spec SPEC` themselves.

A worker that fails or dies stops the others and fails the Trainer: its
Model artifact is never published (the runner keeps it `.failed`). SIGTERM
or Ctrl-C to the Trainer stops the workers and removes their namespaces.
The namespaces carry the Trainer's pid; a Trainer killed outright (SIGKILL)
leaves them behind, and the next Trainer on the machine removes them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from cluster.processes import alive, free_port
from components.base.interrupt import sigterm_interrupts

WORKER_PORT = 2222
NETNS_PREFIX = "tfx-"  # tfx-<Trainer pid>-<tag>-sw (the switch) and tfx-<pid>-<tag>-<i> (host i)
_OURS = re.compile(rf"^{re.escape(NETNS_PREFIX)}(\d+)-[0-9a-f]{{6}}-(?:sw|\d+)$")


class WorkerFailed(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def netns_available() -> str | None:
    """None when network namespaces can be made here, else why not."""
    if shutil.which("ip") is None:
        return "the `ip` command is missing (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"tfxprobe{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def namespaces() -> list[str]:
    """The network namespaces on this machine (`ip netns list`; its lines may add "(id: N)"); none without `ip`."""
    if shutil.which("ip") is None:
        return []
    return [line.split(" ", 1)[0] for line in _ip("netns", "list", check=False).stdout.splitlines() if line]


def remove_stale_networks() -> list[str]:
    """Delete the worker namespaces of Trainers that no longer run (killed with SIGKILL); return their names."""
    stale = []
    for name in namespaces():
        match = _OURS.match(name)
        if match and not alive(int(match.group(1))):
            _ip("netns", "del", name, check=False)
            stale.append(name)
    return stale


class HostNetwork:
    """N network namespaces ("hosts") joined by a bridge in a switch namespace; removed on exit."""

    def __init__(self, hosts: int) -> None:
        tag = uuid.uuid4().hex[:6]
        owner = f"{NETNS_PREFIX}{os.getpid()}-{tag}"
        self.switch = f"{owner}-sw"
        self.names = [f"{owner}-{i}" for i in range(hosts)]
        subnet = 200 + int(tag, 16) % 50  # 10.233.200-249.0/24, one per network made
        self.addresses = [f"10.233.{subnet}.{i + 1}" for i in range(hosts)]
        self._tag = tag

    def __enter__(self) -> "HostNetwork":
        try:
            _ip("netns", "add", self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for i, (name, address) in enumerate(zip(self.names, self.addresses)):
                host_end, switch_end = f"h{self._tag}{i}", f"s{self._tag}{i}"
                _ip("netns", "add", name)
                _ip("link", "add", host_end, "type", "veth", "peer", "name", switch_end)
                _ip("link", "set", host_end, "netns", name)
                _ip("link", "set", switch_end, "netns", self.switch)
                _ip("-n", self.switch, "link", "set", switch_end, "master", "br0", "up")
                _ip("-n", name, "addr", "add", f"{address}/24", "dev", host_end)
                _ip("-n", name, "link", "set", host_end, "up")
                _ip("-n", name, "link", "set", "lo", "up")
        except subprocess.CalledProcessError as error:
            self.__exit__(None, None, None)
            raise WorkerFailed(f"could not make the worker network: {error.stderr.strip()}") from None
        except BaseException:  # Ctrl-C or SIGTERM half way: remove what was made
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for name in [*self.names, self.switch]:
            _ip("netns", "del", name, check=False)

    def command(self, index: int, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.names[index], *argv]


def _stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.1, deadline - time.monotonic()))
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _tail(path: str, lines: int = 5) -> str:
    with contextlib.suppress(OSError), open(path, errors="replace") as f:
        text = [line.rstrip() for line in f if line.strip()]
        return " | ".join(text[-lines:])
    return ""


def write_spec(fn_args, run_fn: str, directory: str) -> str:
    path = os.path.join(directory, "trainer-spec.json")
    with open(path, "w") as f:
        json.dump({"run_fn": run_fn, "fn_args": dataclasses.asdict(fn_args)}, f, indent=2)
    return path


def worker_argv(spec_path: str) -> list[str]:
    return [sys.executable, "-m", "components.trainer.worker", "--spec", spec_path]


def run_workers(fn_args, run_fn: str, workers: int, work_dir: str, out=None, isolate: bool | None = None) -> None:
    """Train on `workers` local workers (network namespaces when possible); raise WorkerFailed if any fails."""
    out = out or sys.stderr
    spec = write_spec(fn_args, run_fn, work_dir)
    reason = netns_available() if isolate in (None, True) else "not asked for"
    if isolate and reason:
        raise WorkerFailed(f"cannot put the workers on their own hosts: {reason}")
    network = HostNetwork(workers) if reason is None else None
    if network is not None:
        stale = remove_stale_networks()
        if stale:
            print(
                f"  Trainer: removed {len(stale)} network namespaces a killed Trainer left: {', '.join(stale)}",
                file=out,
            )
    with sigterm_interrupts(), network or contextlib.nullcontext():
        if network is not None:
            hosts = [f"{address}:{WORKER_PORT}" for address in network.addresses]
            where = f"{workers} hosts (network namespaces {', '.join(network.names)})"
        else:
            hosts = [f"127.0.0.1:{free_port()}" for _ in range(workers)]
            where = f"{workers} processes on 127.0.0.1 ({reason})"
        print(f"  Trainer: MultiWorkerMirroredStrategy on {where}: {', '.join(hosts)}", file=out, flush=True)
        processes, logs = [], []
        # The workers' temporary files in a folder of this run's, removed once they have ended: a worker
        # stopped by a signal leaves what it would delete at a normal exit (AutoGraph's generated sources).
        scratch = tempfile.mkdtemp(prefix="trainer-workers-")
        try:
            for index in range(workers):
                tf_config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
                argv = worker_argv(spec)
                if network is not None:
                    argv = network.command(index, argv)
                log_path = os.path.join(work_dir, f"worker-{index}.log")
                logs.append(log_path)
                log = open(log_path, "wb")
                processes.append(
                    subprocess.Popen(
                        argv,
                        env={**os.environ, "TF_CONFIG": json.dumps(tf_config), "TMPDIR": scratch},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
                log.close()
            _wait(processes, logs, out)
        finally:
            _stop(processes)
            shutil.rmtree(scratch, ignore_errors=True)


def _wait(processes: list[subprocess.Popen], logs: list[str], out) -> None:
    """Until every worker exits 0; the first failure stops the rest. The chief's log is echoed as it grows."""
    echoed = 0
    while True:
        echoed = _echo(logs[0], echoed, out)
        codes = [p.poll() for p in processes]
        failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            index, code = failed[0]
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            raise WorkerFailed(f"worker {index} failed ({how}): {_tail(logs[index], 1)} (log: {logs[index]})")
        if all(c == 0 for c in codes):
            _echo(logs[0], echoed, out)
            return
        time.sleep(0.5)


def _echo(path: str, offset: int, out) -> int:
    """Print the chief's progress lines (epochs, budget) that appeared since `offset`."""
    with contextlib.suppress(OSError), open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
        keep = data[: data.rfind(b"\n") + 1]
        for line in keep.decode(errors="replace").splitlines():
            if line.startswith("  "):
                print(line, file=out, flush=True)
        return offset + len(keep)
    return offset


def run_external_task(fn_args, run_fn: str, work_dir: str, out=None) -> None:
    """TF_CONFIG given by the user: run the task it names here; the other hosts start theirs with the same spec."""
    out = out or sys.stderr
    spec = write_spec(fn_args, run_fn, work_dir)
    shared = os.environ.get("TRAINER_SPEC_PATH")
    if shared:  # where workers on other hosts wait for it (cluster/k8s/training-job.yaml)
        os.makedirs(os.path.dirname(os.path.abspath(shared)), exist_ok=True)
        shutil.copyfile(spec, shared + ".tmp")
        os.replace(shared + ".tmp", shared)
    print(
        f"  Trainer: TF_CONFIG names this task {json.loads(os.environ['TF_CONFIG']).get('task')}; start every other "
        f"task with its own TF_CONFIG: {' '.join(worker_argv(spec))}",
        file=out,
        flush=True,
    )
    process = subprocess.Popen(worker_argv(spec), stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        code = process.wait()
    finally:
        _stop([process])
    if code != 0:
        raise WorkerFailed(f"the Trainer's worker failed (exit code {code})")
