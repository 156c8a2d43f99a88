"""`python -m pipelines` as a user meets it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import errno
import functools
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines.metadata import MetadataStore, sqlite_config
from tests.conftest import ROOT, imported_modules, pipelines_cli, without_import_times

cli = functools.partial(pipelines_cli, timeout=120)  # the bound these tests had before the shared helper


def assert_one_line_usage_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_list_names_the_known_pipelines():
    result = cli("list")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert "captcha" in names and "house_price" in names


@pytest.mark.parametrize("args", [(), ("run",), ("runs",), ("list",)])
def test_help_everywhere(args):
    result = cli(*args, "--help")
    assert result.returncode == 0
    assert "usage:" in result.stdout


def test_run_help_documents_beam_options():
    result = cli("run", "--help")
    for flag in ("--runner", "--direct_num_workers", "--direct_running_mode", "--no-cache", "--quick"):
        assert flag in result.stdout


def test_unknown_pipeline_is_one_line_and_exit_2(tmp_path):
    result = cli("run", "no_such_pipeline", "--output-dir", str(tmp_path))
    assert_one_line_usage_error(result, "unknown pipeline 'no_such_pipeline'", "captcha")


def test_unknown_command_flag_is_one_line_and_exit_2():
    assert_one_line_usage_error(cli("list", "--frobnicate"), "--frobnicate")
    assert_one_line_usage_error(cli("runs", "captcha", "--bogus"), "--bogus")


def test_misspelt_beam_option_is_refused_not_ignored(tmp_path):
    result = cli("run", "captcha", "--direct_num_worker=2", "--output-dir", str(tmp_path))
    assert_one_line_usage_error(result, "unknown Beam pipeline option", "--direct_num_worker=2")
    # With its value apart, the option was missed and the value reported as a stray word.
    result = cli("run", "captcha", "--direct_num_worker", "2", "--output-dir", str(tmp_path))
    assert_one_line_usage_error(result, "unknown Beam pipeline option(s): --direct_num_worker")
    assert_one_line_usage_error(cli("run", "captcha", "extra"), "unrecognized arguments: extra")


@pytest.mark.parametrize("command", ["run", "validate"])
def test_an_unknown_runner_is_refused_before_the_run_begins(tmp_path, command):
    """Beam refused it only when the first component made its pipeline: a run recorded as failed there,
    and validate's exit 3, "internal error"."""
    data = tmp_path / "ok.csv"
    data.write_text("area,bedrooms,price\n1,1,1\n")
    schema = "schemas/house_price/schema.pbtxt"
    where = (
        ["captcha", "--output-dir", str(tmp_path)] if command == "run" else ["--data", str(data), "--schema", schema]
    )
    result = cli(command, *where, "--runner", "Nope", env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = imported_modules(result.stderr)
    result.stderr = without_import_times(result.stderr)
    assert_one_line_usage_error(result, "unknown Beam runner 'Nope'", "DirectRunner")
    assert not (tmp_path / "captcha").exists()
    # Beam's to check, so Beam is loaded; TensorFlow and TFDV are not (validate took 8.7 s to say it).
    assert "apache_beam" in imported and not {"tensorflow", "tensorflow_data_validation"} & imported


@pytest.mark.parametrize("flag", ["--output-dir", "--serving-dir"])
def test_a_file_where_a_run_writes_a_folder_is_refused_before_the_run_begins(tmp_path, flag):
    """--serving-dir over a file failed the Pusher at the end of a whole run; --output-dir was exit 3."""
    taken = tmp_path / "taken"
    taken.write_text("a file")
    folders = {
        "--output-dir": str(tmp_path / "runs"),
        "--serving-dir": str(tmp_path / "serving"),
        flag: str(taken / "x"),
    }
    result = cli("run", "house_price", *[item for pair in folders.items() for item in pair])
    assert_one_line_usage_error(result, f"{flag} {taken}/x: {taken} is a file, not a folder")
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc, a folder no one can write in")
def test_a_folder_that_cannot_be_made_is_refused_before_the_run_begins(tmp_path):
    """/proc passes an access() check for root, and the run failed as "internal error" (exit 3)."""
    result = cli("run", "house_price", "--output-dir", "/proc/x", "--serving-dir", str(tmp_path / "serving"))
    assert_one_line_usage_error(result, "--output-dir /proc/x: /proc is not writable: ")


def test_the_writability_check_leaves_nothing_behind(tmp_path):
    from pipelines.validate_checks import folder_problem

    assert folder_problem(str(tmp_path / "a" / "b")) is None and folder_problem(str(tmp_path)) is None
    assert not list(tmp_path.iterdir())  # its probe folder was removed, and a/b not made


def test_bad_choice_for_running_mode_is_exit_2():
    result = cli("run", "captcha", "--direct_running_mode", "fastest")
    assert_one_line_usage_error(result, "fastest")


def test_bad_param_syntax_is_exit_2(tmp_path):
    result = cli("run", "captcha", "--param", "epochs", "--output-dir", str(tmp_path))
    assert_one_line_usage_error(result, "NAME=VALUE")


def test_unparsable_metadata_config_is_exit_2(tmp_path):
    config = tmp_path / "mlmd.pbtxt"
    config.write_text("mysql { hots: 'x' }")
    result = cli("runs", "captcha", "--metadata-config", str(config))
    assert_one_line_usage_error(result, "does not parse")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("run", "captcha", "--param", "num_examples=0"), "must be within [1, 10000000], got 0"),
        (("run", "captcha", "--param", "nosuch=1"), "unknown parameter 'nosuch'"),
        (("run", "captcha", "--param", "heads=lstm"), "heads must be one of"),
        (("run", "captcha", "--param", 'render_style={"rotate": [30, -30]}'), "low <= high"),
        (("run", "captcha", "--to", "Nope"), "has no component 'Nope'"),
        (("run", "house_price", "--param", "model=forest"), "model must be one of"),
        (("run", "mnist", "--param", "conv_filters=0"), "conv_filters must be positive integers"),
        (("compare", "captcha", "--param", "heads=sequence,lstm"), "heads must be one of"),
    ],
)
def test_a_pipelines_own_checks_answer_before_tensorflow_is_imported(tmp_path, args, fragment):
    """The pipeline is built, and its components' and models' settings checked, from plain Python: a bad
    --param or --to is refused without the seconds of TensorFlow and Beam imports a run needs."""
    result = cli(*args, "--output-dir", str(tmp_path / "runs"), env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = imported_modules(result.stderr)
    assert "pipelines.registry" in imported  # the import log is there to read, and the pipeline was built
    assert not {"tensorflow", "apache_beam"} & imported, sorted(m for m in imported if "." not in m)
    assert result.returncode == 2 and fragment in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "runs").exists()


def test_runs_without_a_store_says_so(tmp_path):
    result = cli("runs", "captcha", "--output-dir", str(tmp_path))
    assert result.returncode == 0
    assert "no runs of captcha yet" in result.stdout
    taken = tmp_path / "taken"
    taken.write_text("a file")
    result = cli("runs", "captcha", "--output-dir", str(taken))  # was "no runs yet", exit 0
    assert_one_line_usage_error(result, f"--output-dir {taken} is a file, not a folder of runs")


@pytest.mark.parametrize("store", ["none", "empty", "not a database", "unparsable config"])
def test_reading_runs_imports_neither_tensorflow_nor_beam(tmp_path, store):
    """`pipelines runs` reads ML Metadata only: it answers in a fraction of a second, not after seconds of imports."""
    where = ["--output-dir", str(tmp_path)]
    if store == "empty":
        MetadataStore(sqlite_config(str(tmp_path / "metadata.sqlite")))
    elif store == "not a database":
        (tmp_path / "metadata.sqlite").write_bytes(b"\x00not a database" * 100)
    elif store == "unparsable config":
        (tmp_path / "mlmd.pbtxt").write_text("mysql { hots: 'x' }")
        where = ["--metadata-config", str(tmp_path / "mlmd.pbtxt")]
    result = cli("runs", "captcha", *where, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = imported_modules(result.stderr)
    assert "pipelines.metadata" in imported  # the import log is there to read, and the store was opened
    assert not {"tensorflow", "apache_beam"} & imported, sorted(m for m in imported if "." not in m)
    if store in ("none", "empty"):
        assert result.returncode == 0 and "no runs of captcha yet" in result.stdout, result.stderr[-2000:]
    else:
        assert result.returncode == 2 and ("cannot be used" in result.stderr or "does not parse" in result.stderr)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("run", "no_such_pipeline"), "unknown pipeline"),
        (("run", "captcha", "--param", "epochs"), "NAME=VALUE"),
        (("run", "mnist", "--data", "/no/such/folder"), "--data: no such file or folder: /no/such/folder"),
        (("run", "house_price", "--data", "/dev/null"), "--data: /dev/null is not a regular file or a folder"),
        (("compare", "captcha", "--param", "epochs=3"), "at least two values"),
        (("compare", "captcha", "--param", "optimizer=adam,sgd,adam"), "adam given more than once"),  # trained twice
        (("compare-runs", "captcha", "1", "2", "--report", "/dev/null"), "--report /dev/null: /dev/null is a file"),
        (("runs", "captcha", "--metadata-config", "/no/such.pbtxt"), "metadata config not found"),
        (("list",), None),
    ],
)
def test_what_the_command_line_alone_shows_is_answered_before_tensorflow_is_imported(tmp_path, args, fragment):
    """A typo costs a fraction of a second, not the seconds TensorFlow and Beam take to import."""
    where = () if args == ("list",) else ("--output-dir", str(tmp_path))
    result = cli(*args, *where, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = imported_modules(result.stderr)
    assert "pipelines.cli" in imported  # the import log is there to read
    assert not {"tensorflow", "apache_beam"} & imported, sorted(m for m in imported if "." not in m)
    if fragment is None:
        assert result.returncode == 0 and "captcha" in result.stdout
    else:
        assert result.returncode == 2 and fragment in result.stderr


def test_bad_render_style_is_one_line_and_exit_2(tmp_path):
    result = cli("run", "captcha", "--param", 'render_style={"rotate": [30, -30]}', "--output-dir", str(tmp_path))
    assert_one_line_usage_error(result, "rotate", "low <= high")


@pytest.mark.parametrize(
    "pipeline, param, fragment",
    [
        ("captcha", "num_examples=-5", "CaptchaExampleGen: parameter 'num_examples' must be within [1, 10000000]"),
        ("captcha", "num_examples=1000000000000", "must be within [1, 10000000]"),  # was a MemoryError, recorded
        ("captcha", "image_height=4", "image_height and image_width must be at least 8 for 3 conv blocks"),
        ("captcha", "image_width=100000", "image_height and image_width must be at most 512"),
        ("captcha", "width=5000", "image size must be within 16x16 and 1024x1024, got 5000x60"),
        ("captcha", "learning_rate=inf", "--param learning_rate: expected a finite number, got 'inf'"),  # was exit 3
        ("captcha", "splits=foo", "CaptchaExampleGen: parameter 'splits' is not a split list"),
        ("captcha", "tolerance=-1", "Evaluator: parameter 'tolerance' must be within [0, 1]"),
        ("captcha", "keep_versions=-1", "Pusher: parameter 'keep_versions' must be >= 0"),
        ("captcha", "min_full_string_accuracy=2", "min_full_string_accuracy must be within [0, 1]"),
        ("captcha", "dense_units=0", "dense_units and shuffle_buffer must be >= 1"),
        ("captcha", "early_stopping_patience=-1", "early_stopping_patience must be >= 0"),
        ("mnist", "min_accuracy=1.5", "min_accuracy must be within [0, 1]"),
        ("house_price", "tolerance=nan", "--param tolerance: expected a finite number, got 'nan'"),
    ],
)
def test_impossible_params_are_refused_when_the_pipeline_is_built(pipeline, param, fragment):
    """Each of these was accepted and failed a component later (or, for a bad learning rate, crashed ML
    Metadata's SQL with exit 3) after the run had been recorded."""
    from pipelines.registry import PIPELINES, RunOptions

    name, _, value = param.partition("=")
    with pytest.raises(ValueError) as refused:
        PIPELINES[pipeline].create(RunOptions(quick=True, params={name: value}))
    assert fragment in str(refused.value)


def test_a_metadata_store_that_is_not_sqlite_is_one_line_exit_2(tmp_path):
    """Before: ML Metadata's SQL error ("file is not a database ... CREATE TABLE ...") and exit 3."""
    (tmp_path / "metadata.sqlite").write_bytes(b"\x00not a database" * 100)
    result = cli("runs", "captcha", "--output-dir", str(tmp_path))
    assert_one_line_usage_error(result, "metadata.sqlite cannot be used: it is not a SQLite database; move it aside")
    assert result.stderr.strip().endswith("or choose another --output-dir")


def test_an_impossible_param_is_one_line_exit_2_and_records_nothing(tmp_path):
    result = cli("run", "captcha", "--param", "num_examples=0", "--output-dir", str(tmp_path / "runs"))
    assert_one_line_usage_error(result, "parameter 'num_examples' must be within [1, 10000000], got 0")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "params,bar",
    [
        ({}, 0.95),
        ({"charset": "alphanumeric"}, 0.95),
        ({"charset": "unambiguous"}, 0.95),
        ({"charset": "ABC"}, 0.90),
        ({"charset": "alphanumeric", "min_full_string_accuracy": "0.5"}, 0.5),
    ],
)
def test_the_evaluators_bar_follows_the_charset(params, bar):
    import json

    from pipelines.registry import PIPELINES, RunOptions

    pipeline = PIPELINES["captcha"].create(RunOptions(params=params))
    [evaluator] = [c for c in pipeline.components if c.id == "Evaluator"]
    assert json.loads(evaluator.parameters["thresholds"]) == {"full_string_accuracy": {"min": bar}}
    [example_gen] = [c for c in pipeline.components if c.id == "CaptchaExampleGen"]
    assert example_gen.parameters["render_style"] == "varied"


def test_library_warnings_are_dropped_however_their_levels_are_set_again():
    import logging

    from pipelines.cli import _errors_only_from_quiet_loggers

    def record(name, level):
        return logging.LogRecord(name, level, __file__, 1, "message", None, None)

    assert not _errors_only_from_quiet_loggers(record("absl", logging.WARNING))
    assert not _errors_only_from_quiet_loggers(record("tensorflow.python.ops", logging.INFO))
    assert not _errors_only_from_quiet_loggers(record("matplotlib.font_manager", logging.WARNING))
    assert _errors_only_from_quiet_loggers(record("absl", logging.ERROR))  # real failures still show
    assert _errors_only_from_quiet_loggers(record("pipelines.runner", logging.WARNING))


def test_the_unambiguous_charset_leaves_out_the_lookalikes_everywhere():
    """charset=unambiguous: the 32 digits and capitals without 0, O, 1 and I, drawn by ExampleGen and
    learnt by the Trainer."""
    import json

    from components.example_gen.captcha_source import ALPHANUMERIC
    from pipelines.registry import PIPELINES, RunOptions

    pipeline = PIPELINES["captcha"].create(RunOptions(params={"charset": "unambiguous"}))
    components = {c.id: c for c in pipeline.components}
    drawn = components["CaptchaExampleGen"].parameters["charset"]
    assert len(drawn) == 32 and set(drawn) == set(ALPHANUMERIC) - set("0O1I")
    assert json.loads(components["Trainer"].parameters["train_config"])["charset"] == drawn


def _in_session(session: int) -> list[str]:
    """Live processes (not zombies) of a session: what a run left behind once its leader exited."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(pid)
    return found


def test_sigterm_stops_a_run_as_ctrl_c_does_and_leaves_no_process(tmp_path):
    """`kill PID` mid-run, Beam on two worker processes: exit 143, the running component recorded
    FAILED, no process of the run left. Before, SIGTERM ended the CLI on the spot: no cleanup ran
    and the component stayed RUNNING."""
    argv = [sys.executable, "-m", "pipelines", "run", "captcha", "--quick", "--output-dir", str(tmp_path / "out")]
    argv += ["--serving-dir", str(tmp_path / "serving"), "--direct_running_mode", "multi_processing"]
    argv += ["--direct_num_workers", "2"]
    log = tmp_path / "log.txt"
    with open(log, "wb") as out:
        run = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "CaptchaExampleGen: running" not in log.read_text() and time.monotonic() < deadline:
            assert run.poll() is None, log.read_text()[-2000:]
            time.sleep(0.2)
        time.sleep(2)  # its Beam workers starting or started: either way they must stop
        run.send_signal(signal.SIGTERM)
        try:
            code = run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            left = subprocess.run(["ps", "-s", str(run.pid), "-o", "pid,stat,cmd"], capture_output=True, text=True)
            raise AssertionError(f"still running 60 s after SIGTERM:\n{left.stdout}{log.read_text()[-2000:]}") from None
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 143, text[-2000:]
    assert "terminated (SIGTERM)" in text and "Traceback" not in text
    deadline = time.monotonic() + 10  # workers that got the stop are let to finish exiting
    while _in_session(run.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _in_session(run.pid)
    [record] = MetadataStore(sqlite_config(str(tmp_path / "out" / "metadata.sqlite"))).runs("captcha")
    states = [e.state for e in record.executions]
    assert states[-1] == "FAILED" and "Terminated" in record.executions[-1].error
    assert set(states[:-1]) <= {"COMPLETE"}


@pytest.mark.parametrize("engine", [(), ("--runner", "flink", "--flink-master", "127.0.0.1:9")])
def test_to_names_a_component_of_the_pipeline_or_is_refused(tmp_path, engine):
    """Refused before the engine is asked: no Flink answers at 127.0.0.1:9, and that is not what is said."""
    result = cli("run", "captcha", "--quick", "--to", "Trainr", *engine, "--output-dir", str(tmp_path))
    assert_one_line_usage_error(result, "no component 'Trainr'", "CaptchaExampleGen", "Trainer", "Pusher")
    assert not (tmp_path / "metadata.sqlite").exists()


def test_a_partial_run_runs_the_component_and_what_it_reads_from_only(tmp_path):
    """TFX's partial run: `--to StatisticsGen` runs ExampleGen and StatisticsGen and records only them."""
    out, serving = tmp_path / "out", tmp_path / "serving"
    args = ("run", "captcha", "--quick", "--output-dir", str(out), "--serving-dir", str(serving))
    result = cli(*args, "--to", "StatisticsGen")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 components" in result.stderr and "[2/2] StatisticsGen: done" in result.stderr
    assert "partial run to StatisticsGen: ran CaptchaExampleGen, StatisticsGen" in result.stdout
    [record] = MetadataStore(sqlite_config(str(out / "metadata.sqlite"))).runs("captcha")
    assert [e.component_id for e in record.executions] == ["CaptchaExampleGen", "StatisticsGen"]
    assert {e.state for e in record.executions} == {"COMPLETE"}
    assert not serving.exists()


def test_a_full_disk_is_one_line_that_says_so_and_that_the_run_resumes(tmp_path, monkeypatch, capsys):
    """A quick run with runs/ on a 15 MB tmpfs: the Evaluator filled it, ML Metadata could not record
    that, and the run ended "internal error: InternalError: Error when executing query: database or
    disk is full query: UPDATE `Execution` ..." (exit 3). Re-run with space, it resumed at the Evaluator."""
    import sqlite3

    from pipelines import cli as cli_module

    def full(args, extra):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as cause:  # as ML Metadata reports it: the disk's error is only the cause
            raise RuntimeError("Error when executing query: database or disk is full query: UPDATE") from cause

    monkeypatch.setattr(cli_module, "cmd_run", full)
    levels = {name: logging.getLogger(name).level for name in cli_module.QUIET_LOGGERS}
    try:  # main() in this process: it quiets these loggers, which other tests in it may read
        code = cli_module.main(
            ["run", "house_price", "--output-dir", str(tmp_path / "runs"), "--serving-dir", str(tmp_path)]
        )
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert f"the disk is full (RuntimeError under {tmp_path}/runs)" in err and "the run resumes" in err
    assert cli_module._disk_full(sqlite3.OperationalError("database or disk is full"))
    assert cli_module._disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not cli_module._disk_full(ValueError("a full string of 4 characters"))
