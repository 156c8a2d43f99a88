"""The SDK worker pool that the TaskManagers share: one TaskManager's worker ids never touch another's."""

import stat
import time

from apache_beam.portability.api import beam_fn_api_pb2

from cluster.worker_pool import SharedWorkerPool


class _Caller:
    """What the servicer reads of a gRPC call: the peer (one channel per TaskManager environment)."""

    def __init__(self, peer: str) -> None:
        self._peer = peer

    def peer(self) -> str:
        return self._peer


def _start(pool, caller, worker_id="1-1"):
    request = beam_fn_api_pb2.StartWorkerRequest(worker_id=worker_id)
    request.control_endpoint.url = "localhost:1"
    response = pool.StartWorker(request, _Caller(caller))
    assert not response.error, response.error


def test_two_taskmanagers_with_the_same_worker_id_keep_their_own_workers(tmp_path):
    boot = tmp_path / "boot"
    boot.write_text("#!/bin/sh\nexec sleep 60\n")
    boot.chmod(boot.stat().st_mode | stat.S_IEXEC)
    pool = SharedWorkerPool(use_process=True, container_executable=str(boot))
    _start(pool, "ipv4:127.0.0.1:40001")
    _start(pool, "ipv4:127.0.0.1:40002")  # the other TaskManager numbers its first environment "1-1" too
    first, second = pool.processes()
    try:
        pool.StopWorker(beam_fn_api_pb2.StopWorkerRequest(worker_id="1-1"), _Caller("ipv4:127.0.0.1:40001"))
        deadline = time.monotonic() + 15
        while first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert first.poll() is not None  # the caller's own worker stopped
        assert second.poll() is None  # Beam's own servicer would have stopped this one (or leaked the first)
        assert pool.processes() == [second]
        # A stop for an id this caller never started is harmless.
        pool.StopWorker(beam_fn_api_pb2.StopWorkerRequest(worker_id="9-9"), _Caller("ipv4:127.0.0.1:40001"))
        assert second.poll() is None
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()
