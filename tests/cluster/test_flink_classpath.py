"""What `make flink-up` adds to a TaskManager's classpath so that a job keeps its Python worker (no cluster runs)."""

from cluster.flink import ClusterConfig, beam_jars_for_taskmanagers, flink_settings


def test_taskmanagers_get_beams_jars_but_not_flinks_or_the_logging_ones(tmp_path):
    names = [
        "beam-runners-flink-1.16-2.59.0.jar",  # the runner whose classes must come from Flink's class loader
        "beam-sdks-java-core-2.59.0.jar",
        "joda-time-2.10.14.jar",  # Beam's types use it: loaded beside them, not from the job's jar
        "flink-runtime-1.16.0.jar",  # the job server's Flink; the cluster runs its own 1.16.3
        "log4j-api-2.17.1.jar",
        "slf4j-api-1.7.32.jar",
        "README.txt",
    ]
    for name in names:
        (tmp_path / name).write_text("")
    jars = beam_jars_for_taskmanagers(str(tmp_path / "*"))
    assert jars == [str(tmp_path / n) for n in sorted(names[:3])]


def test_parent_first_so_those_jars_win_over_the_jobs_copy():
    settings = flink_settings(ClusterConfig())
    assert settings["classloader.resolve-order"] == "parent-first"
    # A lost TaskManager restarts the whole job, late enough for the JobManager to have dropped it.
    assert settings["jobmanager.execution.failover-strategy"] == "full"
    attempts = int(settings["restart-strategy.fixed-delay.attempts"])
    delay_s = int(settings["restart-strategy.fixed-delay.delay"].split()[0])
    assert attempts * delay_s * 1000 > int(settings["heartbeat.timeout"])
