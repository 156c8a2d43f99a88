"""components/base/beam.py's progress lines: a count, a rate, and whose share it is."""

from __future__ import annotations

import os

import pytest

from components.base.beam import CountProgress, UnknownBeamOption, check_beam_args, check_runner


def test_progress_lines_say_when_they_count_one_workers_share(capsys):
    progress = CountProgress("examples", every=2)
    progress.setup()
    assert [x for i in range(4) for x in progress.process(i)] == [0, 1, 2, 3]  # elements pass through
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["  examples: 2", "  examples: 4"]
    assert all("worker" not in line for line in lines)  # counted in the process that built the pipeline
    progress.driver_pid = -1  # as in a Beam worker process
    for i in (4, 5):
        list(progress.process(i))
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("  examples: 6 (") and line.endswith(f"/s, worker {os.getpid()}'s share)")


def test_a_portable_submissions_temporary_folders_are_removed_and_a_direct_runs_are_left_alone(tmp_path, monkeypatch):
    """Beam's stager makes a tempfile.mkdtemp() per portable submission and never removes it (the
    real submission is in tests/cluster/test_flink.py); a DirectRunner's run is the job itself."""
    import tempfile

    from components.base.beam import _submission_scratch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with _submission_scratch("PortableRunner"):
        staged = tempfile.mkdtemp()
        assert staged.startswith(str(tmp_path)) and os.path.isdir(staged)
    assert not os.listdir(tmp_path) and tempfile.tempdir == str(tmp_path)
    with _submission_scratch("DirectRunner"):
        kept = tempfile.mkdtemp()
    assert os.path.isdir(kept)


def test_a_pipeline_that_is_never_run_leaves_no_temporary_folder():
    """Beam removes a pipeline's temporary folder at the end of run(); building one can fail first."""
    import gc

    from components.base.beam import make_pipeline

    pipeline = make_pipeline([])
    folder = pipeline.local_tempdir
    assert os.path.isdir(folder)
    del pipeline
    gc.collect()
    assert not os.path.exists(folder)


@pytest.mark.parametrize("name", [None, "DirectRunner", "direct", "PORTABLE", "flinkrunner", "my.module.MyRunner"])
def test_beams_own_runners_by_any_of_their_names_and_dotted_classes_pass(name):
    check_runner(name)


@pytest.mark.parametrize("args", [["--runner=Nope"], ["--runner", "Directt"]])
def test_a_runner_beam_does_not_know_is_refused_with_the_ones_it_does(args):
    with pytest.raises(
        UnknownBeamOption, match=r"unknown Beam runner '\w+'; Beam's are .*DirectRunner.*PortableRunner"
    ):
        check_beam_args(args)


def test_options_with_their_values_apart_pass_and_words_no_option_takes_are_refused():
    """`--job_endpoint HOST:PORT` is how Beam's own docs write options; the CLI refused the value as a stray word."""
    args = ["--job_endpoint", "localhost:8099", "--environment_type=LOOPBACK", "--direct_num_workers", "2"]
    assert check_beam_args(args) == args
    with pytest.raises(UnknownBeamOption, match="unrecognized arguments: extra"):
        check_beam_args(["--job_endpoint", "localhost:8099", "extra"])
    with pytest.raises(UnknownBeamOption, match="unknown Beam pipeline option.*: --report-dir"):
        check_beam_args(["--report-dir", "/tmp/x"])  # the flag named, not its value as a stray word
