"""The cluster's readiness check against a scripted JobManager REST API (the real one is in test_flink.py).

The race it guards: a TaskManager killed a moment ago is still listed, with a recent heartbeat, until
the JobManager's heartbeat timeout; a replacement started by `up` must have registered under its own
id before the cluster counts as ready again.
"""

import http.server
import json
import threading
import time

import pytest

from cluster.flink import ClusterConfig, FlinkCluster, free_port


@pytest.fixture
def jobmanager():
    """An HTTP server on 127.0.0.1 answering /overview and /taskmanagers from `listing`."""
    listing: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/overview":
                body = {"taskmanagers": len(listing), "slots-total": 2 * len(listing)}
            elif self.path == "/taskmanagers":
                body = {"taskmanagers": listing}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], listing
    server.shutdown()
    server.server_close()


def _cluster(tmp_path, rest_port):
    cluster = FlinkCluster(
        str(tmp_path / "state"),
        ClusterConfig(rest_port=rest_port, job_port=free_port(), worker_pool_port=free_port()),
    )
    cluster.processes().update(
        {
            "taskmanager-1": {"pid": 1, "marker": "x", "log": "tm1.out", "resource_id": "taskmanager-1-100"},
            "taskmanager-2": {"pid": 2, "marker": "x", "log": "tm2.out", "resource_id": "taskmanager-2-200"},
        }
    )
    return cluster


def _tm(resource_id):
    return {"id": resource_id, "timeSinceLastHeartbeat": time.time() * 1000}


def test_a_killed_taskmanagers_stale_registration_does_not_count_for_its_replacement(jobmanager, tmp_path):
    port, listing = jobmanager
    cluster = _cluster(tmp_path, port)
    # The JobManager still lists the killed taskmanager-2-100, heard from a moment ago; its replacement
    # taskmanager-2-200 has not registered yet. Two listed, two "alive", and still not ready.
    listing[:] = [_tm("taskmanager-1-100"), _tm("taskmanager-2-100")]
    problems = cluster.problems()
    assert any("taskmanager-2 (taskmanager-2-200) not registered" in p for p in problems), problems
    assert not any("taskmanager-1" in p for p in problems), problems

    listing.append(_tm("taskmanager-2-200"))
    problems = cluster.problems()
    assert not any("registered" in p for p in problems), problems
    # Only the ports of the job server and worker pool (nothing listens there in this test) remain.
    assert all(p.startswith(("no job server", "no worker pool")) for p in problems), problems


def test_a_taskmanager_not_heard_from_lately_is_not_alive(jobmanager, tmp_path):
    port, listing = jobmanager
    cluster = _cluster(tmp_path, port)
    stale = _tm("taskmanager-2-200")
    stale["timeSinceLastHeartbeat"] -= 60_000
    listing[:] = [_tm("taskmanager-1-100"), stale]
    problems = cluster.problems()
    assert any("1 of 2 TaskManagers alive" in p for p in problems), problems
