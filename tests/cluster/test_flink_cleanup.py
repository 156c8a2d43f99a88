"""Where a local cluster's processes keep their temporary files, and that `down` removes them.

Flink's default io.tmp.dirs is /tmp, and a TaskManager started with its own resource id (as `up`
starts each one) keeps its working directory there after it stops: the blobs of every job it ran,
0.6-1 GB each time. The real cluster's side is in test_flink.py (a killed TaskManager's directory)."""

import os

from cluster.flink import ClusterConfig, FlinkCluster


def test_every_java_process_keeps_its_temporary_files_in_the_state_dir(tmp_path):
    cluster = FlinkCluster(str(tmp_path / "state"), ClusterConfig())
    command = cluster._java("/flink", "/conf", "taskmanager-1", "Main", ["-Xmx1g"], ["-D", "a=b"])
    tmp = os.path.join(str(tmp_path / "state"), "tmp")
    assert cluster.tmp_dir == tmp
    assert f"-Djava.io.tmpdir={tmp}" in command[: command.index("Main")]  # a JVM flag, before the main class
    after_main = command[command.index("Main") :]
    assert after_main[-2:] == ["-D", f"io.tmp.dirs={tmp}"]  # Flink's dynamic property, after the config dir
    assert ["-D", "a=b"] == after_main[after_main.index("a=b") - 1 : after_main.index("a=b") + 1]


def test_down_removes_what_the_processes_left_and_keeps_the_logs(tmp_path):
    cluster = FlinkCluster(str(tmp_path / "state"), ClusterConfig())
    blob = os.path.join(cluster.tmp_dir, "tm_taskmanager-1-1700000000", "blobStorage", "job_1", "blob_p-1")
    os.makedirs(os.path.dirname(blob))
    with open(blob, "wb") as f:
        f.write(b"\0" * 1024)
    os.makedirs(cluster.logs_dir)
    with open(os.path.join(cluster.logs_dir, "taskmanager-1.log"), "w") as f:
        f.write("the log of a failed session\n")

    cluster.down()

    assert not os.path.exists(cluster.tmp_dir)
    assert os.listdir(cluster.logs_dir) == ["taskmanager-1.log"]


def test_a_config_on_free_ports_takes_none_of_the_defaults_and_keeps_its_settings():
    config = ClusterConfig.on_free_ports(taskmanagers=3, slots=1)
    ports = [config.rest_port, config.rpc_port, config.job_port, config.artifact_port]
    ports += [config.expansion_port, config.worker_pool_port]
    assert config.taskmanagers == 3 and config.slots == 1 and config.host == "127.0.0.1"
    assert len(set(ports)) == 6 and not set(ports) & {8081, 6123, 8099, 8098, 8097, 50000}
    assert ClusterConfig.on_free_ports(rest_port=18081).rest_port == 18081
