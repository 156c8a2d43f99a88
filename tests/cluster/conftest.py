"""A real Flink session cluster for the tests that need one: started once per session on free ports, stopped after."""

import os
import shutil

import pytest

from cluster import downloads
from cluster.flink import ClusterConfig, FlinkCluster


def _skip_reason() -> str | None:
    if shutil.which("java") is None:
        return "Java is not installed (apt-get install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def flink_cluster(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    try:
        downloads.flink_home()
        downloads.job_server_classpath()
    except downloads.DownloadError as error:
        pytest.skip(f"Flink or Beam's job server could not be fetched: {error}")
    state_dir = str(tmp_path_factory.mktemp("flink"))
    cluster = FlinkCluster(state_dir, config=ClusterConfig.on_free_ports())
    try:
        cluster.up(timeout=240)
        yield cluster
    finally:
        cluster.down()
        # Keep the logs of a failed session for the CI log; drop the installed worker sites.
        shutil.rmtree(os.path.join(state_dir, "workers"), ignore_errors=True)
