"""The Beam components on a real Flink session cluster (JobManager, 2 TaskManagers, job server, worker pool)."""

import glob
import os
import signal
import tempfile
import threading
import time

import apache_beam as beam
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2

from cluster.flink import FlinkCluster, rest_get
from components.base import BaseBeamExecutor
from components.base.artifacts import SPLIT_FILE_PREFIX, Examples, ExampleStatistics
from components.base.beam import make_pipeline, run_pipeline
from components.example_gen import CaptchaExampleGen
from components.statistics_gen.stats_io import load_split_statistics
from pipelines.engines import beam_args, flink_args, module_origin
from pipelines.metadata import MetadataStore, sqlite_config
from pipelines.pipeline import Pipeline
from pipelines.registry import PIPELINES, RunOptions
from pipelines.runner import ComponentFailed, LocalRunner
from tests.conftest import ROOT, pipelines_cli

SPLITS = ("train", "eval", "test")


def _output_dir(run_root: str, component: str, key: str) -> str:
    found = [
        p
        for p in glob.glob(os.path.join(run_root, "captcha", component, "*", key))
        if "." not in os.path.basename(os.path.dirname(p))
    ]
    assert len(found) == 1, found
    return found[0]


def _records(directory: str, split: str) -> list[bytes]:
    files = sorted(glob.glob(Examples(uri=directory).split_files(split)))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")] if files else []


def _parsed(directory: str, split: str) -> list:
    """Examples as sorted (feature, values) tuples: a proto map's byte order is not fixed."""
    out = []
    for record in _records(directory, split):
        example = tf.train.Example.FromString(record)
        out.append(
            tuple(
                sorted(
                    (name, tuple(getattr(f, f.WhichOneof("kind")).value))
                    for name, f in example.features.feature.items()
                )
            )
        )
    return sorted(out)


def _statistics(run_root: str, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    return load_split_statistics(ExampleStatistics(uri=_output_dir(run_root, "StatisticsGen", "statistics")), split)


def _finished_jobs(cluster: FlinkCluster) -> set[str]:
    jobs = (rest_get(cluster.config, "/jobs/overview") or {}).get("jobs", [])
    return {job["jid"] for job in jobs if job["state"] == "FINISHED"}


def _workers_started(cluster: FlinkCluster) -> int:
    """Python SDK workers the cluster's worker pool has started so far (Beam's pool logs each start)."""
    path = os.path.join(cluster.logs_dir, "worker-pool.out")
    with open(path, errors="replace") as f:
        return sum("Starting worker with command" in line for line in f)


def _quick_captcha_on_flink(state_dir: str, out: str, serving: str, timeout: float, *more: str):
    """`pipelines run captcha --quick --runner flink`, finding its cluster through FLINK_STATE_DIR."""
    env = {**os.environ, "FLINK_STATE_DIR": state_dir}
    args = ("run", "captcha", "--quick", "--runner", "flink", "--output-dir", out, "--serving-dir", serving, *more)
    return pipelines_cli(*args, env=env, timeout=timeout)


def test_quick_pipeline_on_flink_matches_the_direct_runner(flink_cluster, captcha_quick_run, tmp_path):
    """The quick pipeline's Beam components on Flink, as a partial run to Transform (`--to`): the
    components after it run no Beam job, so what they would read is what this test compares."""
    whole = PIPELINES["captcha"].create(RunOptions(quick=True, serving_dir=str(tmp_path / "unused")))
    beam_ids = {c.id for c in whole.components if issubclass(type(c).EXECUTOR, BaseBeamExecutor)}
    assert beam_ids == {"CaptchaExampleGen", "StatisticsGen", "Transform"}
    assert beam_ids <= {c.id for c in whole.up_to("Transform").components}
    before = _finished_jobs(flink_cluster)
    workers_before = _workers_started(flink_cluster)
    out, serving = str(tmp_path / "runs"), str(tmp_path / "serving")
    result = _quick_captcha_on_flink(flink_cluster.state_dir, out, serving, 900, "--to", "Transform")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"jobs go to {flink_cluster.config.job_endpoint}" in result.stderr
    assert "partial run to Transform" in result.stdout
    # ExampleGen, StatisticsGen and Transform each ran as a Flink job that the web UI lists as finished,
    # spread over the cluster's slots (Beam's job server alone would run every job at parallelism 1).
    new_jobs = _finished_jobs(flink_cluster) - before
    assert len(new_jobs) >= 3
    for jid in new_jobs:
        vertices = rest_get(flink_cluster.config, f"/jobs/{jid}")["vertices"]
        assert max(v["parallelism"] for v in vertices) == flink_cluster.config.parallelism > 1
    # Each TaskManager kept one Python SDK worker for a job's stages (cluster/flink.py,
    # beam_jars_for_taskmanagers) rather than starting one per stage: 7-10 per job before.
    workers = _workers_started(flink_cluster) - workers_before
    assert 0 < workers <= flink_cluster.config.taskmanagers * len(new_jobs), (workers, len(new_jobs))

    direct = captcha_quick_run["out"]
    for split in SPLITS:
        # Same split sizes, same examples (so the same keys went to the same splits).
        flink_examples = sorted(_records(_output_dir(out, "CaptchaExampleGen", "examples"), split))
        direct_examples = sorted(_records(_output_dir(direct, "CaptchaExampleGen", "examples"), split))
        assert flink_examples == direct_examples and flink_examples
        assert _statistics(out, split) == _statistics(direct, split)
        assert _parsed(_output_dir(out, "Transform", "transformed_examples"), split) == _parsed(
            _output_dir(direct, "Transform", "transformed_examples"), split
        )


def test_workers_import_the_staged_wheel_through_a_job_server_for_flink_master(
    flink_cluster, capsys, tmp_path, monkeypatch
):
    """--flink-master: a job server is started for the run; workers get the project only as the staged wheel."""
    config = flink_cluster.config
    args = beam_args("flink", config.flink_master, [f"--environment_config={config.worker_pool}"])
    assert "--runner=PortableRunner" in args and any(a.startswith("--extra_package=") for a in args)
    assert f"--job_endpoint={config.job_endpoint}" not in args  # its own job server, not the cluster's

    # Importable callables only: a function of this test module does not exist on the workers.
    pipeline = make_pipeline(args)
    result_path = os.path.join(flink_cluster.state_dir, "where.txt")
    _ = (
        pipeline
        | beam.Create(["components", "pipelines.engines"])
        | beam.Map(module_origin)
        | beam.io.WriteToText(result_path, shard_name_template="")
    )
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    run_pipeline(pipeline)
    # Beam's stager wrote the submission's files (extra_packages.txt, ...) to a temporary folder: removed.
    assert not os.listdir(tmp_path)
    with open(result_path) as f:
        locations = [line.strip() for line in f if line.strip()]
    installed = os.path.join(flink_cluster.state_dir, "workers", "installed")
    assert locations and all(path.startswith(installed) for path in locations), locations
    assert not any(path.startswith(os.path.join(ROOT, "components")) for path in locations)
    # The pool's log says which workers started, without third-party notices at every worker start
    # (Google's Python-version FutureWarnings, TensorFlow's CUDA banner on a machine without a GPU).
    with open(os.path.join(flink_cluster.logs_dir, "worker-pool.out"), errors="replace") as f:
        log = f.read()
    assert "Starting worker with command" in log
    assert "FutureWarning" not in log and "cuda" not in log.lower(), log[-3000:]


def test_validate_on_flink_gives_the_direct_runners_verdict(flink_cluster, shared_data, tmp_path):
    data = os.path.join(shared_data, "house_price", "data1.csv")
    env = {**os.environ, "FLINK_STATE_DIR": flink_cluster.state_dir}
    verdicts = {}
    for runner in ("DirectRunner", "flink"):
        result = pipelines_cli(
            "validate",
            "--data",
            data,
            "--schema",
            "schemas/house_price/schema.pbtxt",
            "--report",
            str(tmp_path / runner),
            "--runner",
            runner,
            env=env,
            timeout=600,
        )
        verdicts[runner] = result.returncode
        assert result.returncode == 0, result.stderr[-2000:]
    stats = {
        runner: statistics_pb2.DatasetFeatureStatisticsList.FromString(
            (tmp_path / runner / "FeatureStats.pb").read_bytes()
        )
        for runner in verdicts
    }
    assert stats["flink"].datasets[0].num_examples == stats["DirectRunner"].datasets[0].num_examples == 47


def _taskmanager_running_a_task(cluster: FlinkCluster) -> str | None:
    """The name (taskmanager-N) of a TaskManager with a task of a running job on it, if any."""
    names = {p.get("resource_id"): name for name, p in cluster.processes().items() if name.startswith("taskmanager")}
    for job in (rest_get(cluster.config, "/jobs/overview") or {}).get("jobs", []):
        if job["state"] != "RUNNING":
            continue
        for vertex in (rest_get(cluster.config, f"/jobs/{job['jid']}") or {}).get("vertices", []):
            if vertex.get("status") != "RUNNING":
                continue
            placed = rest_get(cluster.config, f"/jobs/{job['jid']}/vertices/{vertex['id']}/taskmanagers") or {}
            for tm in placed.get("taskmanagers", []):
                if tm.get("status") == "RUNNING" and tm.get("taskmanager-id") in names:
                    return names[tm["taskmanager-id"]]
    return None


def test_a_taskmanager_killed_mid_job_is_recovered_and_up_restarts_it(flink_cluster, tmp_path):
    """Flink's restart strategy reruns the job on the TaskManager that is left; never a half-written LIVE artifact."""
    store = MetadataStore(sqlite_config(str(tmp_path / "metadata.sqlite")))
    runner = LocalRunner(
        store, str(tmp_path / "root"), beam_pipeline_args=flink_args(None, [], state_dir=flink_cluster.state_dir)
    )
    pipeline = Pipeline("killtest", [CaptchaExampleGen(num_examples=3000, seed=11)])
    outcome = {}

    def run():
        try:
            outcome["result"] = runner.run(pipeline)
        except ComponentFailed as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    # The victim is a TaskManager that runs a task of the job (Flink may place a small job's tasks all
    # on one of the two), so the kill really interrupts the job.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        name = _taskmanager_running_a_task(flink_cluster)
        if name is not None:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the job never started running")
    time.sleep(2)
    assert thread.is_alive(), "the job ended before its TaskManager could be killed"
    victim = flink_cluster.processes()[name]["pid"]
    killed_id = flink_cluster.processes()[name]["resource_id"]
    before_kill = {tm["id"] for tm in rest_get(flink_cluster.config, "/taskmanagers")["taskmanagers"]}
    os.killpg(victim, signal.SIGKILL)
    thread.join(timeout=600)
    assert not thread.is_alive()

    # Flink restarted the whole job on the slots left (failover "full", restarts 10 s apart: cluster/flink.py)
    # and it finished with every example written once.
    [run_record] = store.runs("killtest")
    [execution] = run_record.executions
    assert "result" in outcome, f"the job was not recovered: {outcome.get('error')}"
    [examples] = outcome["result"].outputs("CaptchaExampleGen", "examples")
    assert examples.get("num_examples") == 3000
    assert sum(len(_records(examples.uri, s)) for s in SPLITS) == 3000
    # The first attempt's temporary folders (beam-temp-*) are not part of the published artifact.
    for split in SPLITS:
        names = os.listdir(examples.split_uri(split))
        assert names and all(name.startswith(f"{SPLIT_FILE_PREFIX}-") for name in names), (split, names)
    assert execution.state == "COMPLETE"
    # The killed TaskManager deleted nothing; its working directory (the job's blobs) is in the
    # cluster's own tmp/, which `down` removes, not in /tmp where it would stay.
    assert os.path.isdir(os.path.join(flink_cluster.tmp_dir, f"tm_{killed_id}", "blobStorage"))
    assert not os.path.exists(os.path.join("/tmp", f"tm_{killed_id}"))

    restarted = FlinkCluster(flink_cluster.state_dir)
    assert not restarted.running(name)
    restarted.up(timeout=120)
    flink_cluster.state = restarted.state  # the session fixture stops the new TaskManager too
    assert restarted.running(name) and not restarted.problems()
    # `up` returns only once the replacement has registered under its own new id, so when the JobManager
    # finally drops the killed one (its heartbeat timeout) the replacement stays: the cluster is still
    # ready once the old id is gone.
    replacement = restarted.processes()[name]["resource_id"]
    assert replacement not in before_kill
    ids = {tm["id"] for tm in rest_get(flink_cluster.config, "/taskmanagers")["taskmanagers"]}
    assert replacement in ids, (replacement, ids)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ids = {tm["id"] for tm in (rest_get(flink_cluster.config, "/taskmanagers") or {}).get("taskmanagers", [])}
        if len(ids & before_kill) == 1:
            break
        time.sleep(1)
    assert ids - before_kill == {replacement} and len(ids & before_kill) == 1, (before_kill, ids)
    assert not restarted.problems()


def test_no_cluster_means_one_clear_line_and_nothing_recorded(tmp_path):
    result = _quick_captcha_on_flink(
        str(tmp_path / "no-cluster"), str(tmp_path / "runs"), str(tmp_path / "serving"), timeout=300
    )
    assert result.returncode == 4
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "make flink-up" in errors[0], result.stderr[-2000:]
    assert not os.path.exists(tmp_path / "runs" / "metadata.sqlite")
    assert not os.path.exists(tmp_path / "serving")


def test_flink_master_without_a_cluster_behind_it_is_refused(tmp_path):
    data = tmp_path / "houses.csv"  # there to be read: a missing file is refused before the engine is asked
    data.write_text("area,bedrooms,price\n2104,3,399900\n")
    result = pipelines_cli(
        "validate",
        "--data",
        str(data),
        "--schema",
        "schemas/house_price/schema.pbtxt",
        "--runner",
        "flink",
        "--flink-master",
        "127.0.0.1:9",
        timeout=300,
    )
    assert result.returncode == 4
    assert "no Flink REST API answers at 127.0.0.1:9" in result.stderr
