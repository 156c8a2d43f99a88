"""`python -m pipelines`: run pipelines, list them, and look at past runs.

Exit codes: 0 success, 1 a component failed (one line says which and why),
2 bad usage or unusable input, 3 an internal error (a bug: run with -v for the
traceback), 4 the engine asked for is not there (e.g. no Flink cluster) or its
job failed outside any component, 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM: stopped as Ctrl-C stops it, workers and their network removed).
"""

from __future__ import annotations

import argparse
import datetime
import errno
import logging
import os
import sys
import warnings

from cluster.processes import quiet_python_env

# Third-party noise that says nothing about the user's run: Google client
# libraries' Python-version notices (pulled in by Beam) and TF's C++ banner.
# The environment carries the filter to the processes Beam and the Trainer start.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")
os.environ.update(quiet_python_env())
# ML Metadata's C++ logs (glog) its errors to stderr as well as raising them, and the CLI answers each
# raised one in a line of its own: a MySQL store that did not answer printed two lines of glog first.
os.environ.setdefault("GLOG_minloglevel", "3")
# TFDV's statistics of a column holding inf or NaN: numpy's "invalid value encountered" twice, with
# the library's source lines. The value itself is what the user needs, and they get it: an anomaly
# where the schema disallows it (the house-price schema does), "mean nan" in the statistics.
for _module in (r"numpy\.core\._methods", r"tensorflow_data_validation\..*"):
    warnings.filterwarnings("ignore", message="invalid value encountered", category=RuntimeWarning, module=_module)

# matplotlib: "findfont: Font family ... not found" while drawing charts (a font cache left by another
# install lists fonts that are gone; the chart falls back to DejaVu Sans and is drawn all the same).
QUIET_LOGGERS = ("apache_beam", "absl", "tensorflow", "matplotlib")


def _errors_only_from_quiet_loggers(record: logging.LogRecord) -> bool:
    if record.name == "apache_beam.runners.common" and record.exc_info:
        # A DoFn's exception, logged with its traceback before Beam re-raises it; the run reports it as
        # the component's one error line, and the store keeps the traceback (`runs`, or run with -v).
        return False
    return record.levelno >= logging.ERROR or record.name.split(".")[0] not in QUIET_LOGGERS


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_ENGINE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, exit code 2.

    Abbreviations are off: a misspelt Beam option must not match a prefix.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="runs", help="where runs and the metadata store live (default: runs)")
    parser.add_argument(
        "--metadata-config",
        metavar="FILE",
        help="ML Metadata ConnectionConfig in text format (e.g. a mysql { ... } block); "
        "default: SQLite at <output-dir>/metadata.sqlite",
    )


def _add_engine_args(parser) -> None:
    parser.add_argument(
        "--runner",
        help="Beam runner (default DirectRunner). `flink`: the cluster `make flink-up` started, or the one at "
        "--flink-master; any other name (PortableRunner, SparkRunner, DataflowRunner, ...) goes to Beam as it is",
    )
    parser.add_argument(
        "--flink-master", metavar="HOST:PORT", help="with --runner flink: an existing Flink cluster's REST address"
    )
    parser.add_argument("--direct_num_workers", type=int, help="DirectRunner parallelism")
    parser.add_argument("--direct_running_mode", choices=["in_memory", "multi_threading", "multi_processing"])


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m pipelines", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    run = sub.add_parser("run", help="run a pipeline end to end", description="Run a pipeline end to end.")
    run.add_argument("pipeline", help="pipeline name (see `python -m pipelines list`)")
    run.add_argument("--quick", action="store_true", help="a small end-to-end run (minutes, not tens of minutes)")
    run.add_argument(
        "--serving-dir", default="serving_models", help="where the Pusher publishes (default: serving_models)"
    )
    run.add_argument(
        "--data",
        "--data-dir",
        dest="data",
        help="input data, for pipelines that read some (house_price: a CSV; mnist: a folder of IDX files or digit images)",
    )
    run.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="override a pipeline parameter; repeatable"
    )
    run.add_argument("--no-cache", action="store_true", help="re-run every component even if its inputs are unchanged")
    run.add_argument(
        "--to",
        metavar="COMPONENT",
        help="a partial run: only COMPONENT and the components it reads from (e.g. --to Transform for the data stages)",
    )
    beam = run.add_argument_group("Beam pipeline options (passed to every Beam component unchanged)")
    _add_engine_args(beam)
    run.epilog = "Any other --option Beam knows (e.g. --environment_config=HOST:PORT) is passed through to Beam."
    _add_store_args(run)

    sub.add_parser("list", help="list known pipelines", description="List the pipelines this repository knows.")

    runs = sub.add_parser(
        "runs", help="past runs of a pipeline", description="Past runs of a pipeline, from ML Metadata."
    )
    runs.add_argument("pipeline")
    runs.add_argument("--last", type=int, default=5, help="how many recent runs to show (default 5; 0 = all)")
    _add_store_args(runs)

    compare = sub.add_parser(
        "compare",
        help="train one variant per value of a parameter and overlay their curves",
        description="Train one variant per value of a parameter (e.g. --param optimizer=adam,rmsprop,adagrad,sgd) "
        "and write overlay plots of validation accuracy and loss per epoch, plus a table.",
    )
    compare.add_argument("pipeline")
    compare.add_argument(
        "--param", required=True, metavar="NAME=V1,V2,...", help="the parameter to vary and its values"
    )
    compare.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="fixed overrides for every variant"
    )
    compare.add_argument("--quick", action="store_true", help="the pipeline's small configuration")
    compare.add_argument(
        "--data", "--data-dir", dest="data", help="input data file or folder, for pipelines that read one"
    )
    _add_store_args(compare)

    compare_runs = sub.add_parser(
        "compare-runs",
        help="past runs side by side: parameters that differ, metrics, curves",
        description="Runs of a pipeline side by side, from ML Metadata: the parameters that differ, the "
        "evaluation metrics and the training curves overlaid (RUN: the id or name `pipelines runs` shows).",
    )
    compare_runs.add_argument("pipeline")
    compare_runs.add_argument("run", nargs="+", help="two or more run ids or names")
    compare_runs.add_argument("--report", help="folder for comparison.md and curves.png (default: print only)")
    _add_store_args(compare_runs)

    validate = sub.add_parser(
        "validate",
        help="validate a CSV or TFRecord file against a schema",
        description="Batch data validation with TFDV: exit 0 when clean, 1 when anomalies are found, "
        "2 for unusable input.",
    )
    validate.add_argument(
        "--data", required=True, help="CSV (header row optional) or TFRecord of tf.Example (.tfrecord[.gz])"
    )
    validate.add_argument("--schema", required=True, help="schema.pbtxt, e.g. schemas/house_price/schema.pbtxt")
    validate.add_argument(
        "--baseline-stats", help="statistics to measure drift against (FeatureStats.pb from a previous run)"
    )
    validate.add_argument("--report", help="report directory (default: reports/<data file name>)")
    validate.add_argument(
        "--environment",
        default="auto",
        help="schema environment (e.g. TRAINING, SERVING); default: the one the data's columns fit",
    )
    _add_engine_args(validate)
    return parser


def _open_store(args):
    from pipelines import metadata

    if args.metadata_config:  # check_usage has seen that the file is there
        try:
            config = metadata.load_connection_config(args.metadata_config)
        except Exception as error:  # noqa: BLE001 - text_format.ParseError and friends: one line for the user
            raise UsageError(f"metadata config {args.metadata_config} does not parse: {error}") from None
    else:
        config = metadata.sqlite_config(os.path.join(args.output_dir, "metadata.sqlite"))
    return metadata.MetadataStore(config)


def _pipeline_entry(name: str):
    from pipelines.registry import PIPELINES

    if name not in PIPELINES:
        raise UsageError(f"unknown pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}")
    return PIPELINES[name]


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param takes NAME=VALUE, got {pair!r}")
        params[name] = value
    return params


def _compare_values(param: str) -> tuple[str, list[str]]:
    name, sep, raw_values = param.partition("=")
    values = [v.strip() for v in raw_values.split(",") if v.strip()]
    if not sep or not name or len(values) < 2:
        raise UsageError(f"--param takes NAME=V1,V2,... with at least two values, got {param!r}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:  # the same variant trained twice, for the time of two
        raise UsageError(f"--param {name}: {', '.join(repeated)} given more than once; each variant once")
    return name, values


def check_usage(args) -> None:
    """Refuse what the command line alone shows to be wrong, before TensorFlow and Beam are imported:
    an unknown pipeline, a --param that is not NAME=VALUE, a --data or --metadata-config that is not
    there answer in a fraction of a second instead of after seconds of imports."""
    if args.command in ("run", "compare", "runs", "compare-runs"):
        _pipeline_entry(args.pipeline)
    if args.command == "run":
        _parse_params(args.param)
    if args.command == "compare":
        _compare_values(args.param)
        _parse_params(args.set)
    if args.command in ("run", "compare") and args.data is not None:
        if not os.path.exists(args.data):
            raise UsageError(f"--data: no such file or folder: {args.data}")
        if not (os.path.isfile(args.data) or os.path.isdir(args.data)):  # a FIFO or a device: a read would block
            raise UsageError(f"--data: {args.data} is not a regular file or a folder")
    if getattr(args, "metadata_config", None) and not os.path.isfile(args.metadata_config):
        raise UsageError(f"metadata config not found: {args.metadata_config}")
    if args.command in ("run", "compare"):
        _check_writable_folder("--output-dir", args.output_dir)
    if args.command == "run":
        _check_writable_folder("--serving-dir", args.serving_dir)
    if args.command == "compare-runs" and args.report:
        _check_writable_folder("--report", args.report)


_DISK_FULL = ("No space left on device", "database or disk is full", "Disk quota exceeded")


def _disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or one it came from, is a full disk: an OSError (ENOSPC, EDQUOT) from Python,
    or the words TensorFlow's file system and ML Metadata's SQLite use for it."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(words in str(error) for words in _DISK_FULL):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _check_writable_folder(flag: str, path: str) -> None:
    """`path` is a folder this process can write in, or one it can make: a file in its place was found
    out by the component that first wrote there (the Pusher, after the whole run, for --serving-dir)."""
    from pipelines.validate_checks import folder_problem

    problem = folder_problem(path)
    if problem:
        raise UsageError(f"{flag} {path}: {problem}")


def _beam_args(args, extra: list[str]) -> list[str]:
    """Beam options for every Beam component; checks that the engine asked for answers (EngineUnavailable)."""
    from components.base.beam import UnknownBeamOption, check_beam_args, check_runner
    from pipelines.engines import FLINK, beam_args

    user_args = []
    if args.direct_num_workers is not None:
        user_args.append(f"--direct_num_workers={args.direct_num_workers}")
    if args.direct_running_mode:
        user_args.append(f"--direct_running_mode={args.direct_running_mode}")
    try:
        check_beam_args(user_args + extra)
        if (args.runner or "").lower() != FLINK:
            check_runner(args.runner)
    except UnknownBeamOption as error:
        raise UsageError(str(error)) from None
    return beam_args(args.runner, args.flink_master, user_args + extra)


def cmd_run(args, extra: list[str]) -> int:
    from pipelines.registry import NotBuiltYet, RunOptions

    entry = _pipeline_entry(args.pipeline)
    options = RunOptions(
        quick=args.quick, serving_dir=args.serving_dir, data=args.data, params=_parse_params(args.param)
    )
    try:
        pipeline = entry.create(options)
        if args.to:
            pipeline = pipeline.up_to(args.to)
    except NotBuiltYet as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:  # a pipeline's own check of its options, or --to naming no component
        raise UsageError(str(error)) from None
    # After the pipeline's own checks, which need no TensorFlow (the configs are plain Python): a
    # misspelt parameter or component costs neither the imports nor, with --runner flink, asking the
    # cluster, building the workers' wheel and starting a job server.
    beam_args = _beam_args(args, extra)
    _import_quietly()

    from pipelines.runner import ComponentFailed, LocalRunner, PipelineStopped

    store = _open_store(args)
    runner = LocalRunner(
        store,
        os.path.join(args.output_dir, pipeline.name),
        beam_pipeline_args=beam_args,
        enable_cache=not args.no_cache,
    )
    try:
        result = runner.run(pipeline)
    except ComponentFailed as error:
        print(f"error: {error}", file=sys.stderr)
        print(
            f"       details: python -m pipelines runs {pipeline.name} --output-dir {args.output_dir}; "
            "re-running resumes from the failed component",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except PipelineStopped as error:
        print(f"stopped: {error}", file=sys.stderr)
        return EXIT_FAILED
    summarize = getattr(pipeline, "summarize", None)
    if callable(summarize):
        print(summarize(result))
    if args.to:
        print(f"partial run to {args.to}: ran {', '.join(result.components)}; nothing after it was run")
    return EXIT_OK


def cmd_validate(args, extra: list[str]) -> int:
    beam_args = _beam_args(args, extra)  # a bad runner or option is refused before TFDV and TensorFlow load
    _import_quietly()
    from components.base.beam import BeamJobFailed
    from components.schema_gen.schema_io import SchemaError
    from pipelines.validate import validate
    from pipelines.validate_checks import EXIT_UNUSABLE, UnusableInput

    try:
        return validate(
            args.data,
            args.schema,
            baseline_stats=args.baseline_stats,
            report_dir=args.report,
            environment=None if args.environment in ("", "none") else args.environment,
            beam_args=beam_args,
        )
    except (UnusableInput, SchemaError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    except BeamJobFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ENGINE


def cmd_compare(args) -> int:
    from pipelines.registry import RunOptions

    entry = _pipeline_entry(args.pipeline)
    name, values = _compare_values(args.param)
    fixed = _parse_params(args.set)
    base = RunOptions(
        quick=args.quick, serving_dir=os.path.join(args.output_dir, ".compare-serving"), data=args.data, params=fixed
    )
    try:
        for value in values:  # check every variant's config before training any
            entry.create(
                RunOptions(
                    quick=args.quick, serving_dir=base.serving_dir, data=args.data, params={**fixed, name: value}
                )
            )
    except ValueError as error:
        raise UsageError(str(error)) from None
    # Only now the libraries the runs need (TensorFlow, Beam, TFDV): a bad variant is refused without them.
    _import_quietly()
    from pipelines.compare import report_dir, run_variants, write_report
    from pipelines.runner import ComponentFailed, LocalRunner, PipelineStopped

    runner = LocalRunner(_open_store(args), os.path.join(args.output_dir, args.pipeline))
    try:
        variants, metric = run_variants(entry, base, name, values, runner)
    except (ComponentFailed, PipelineStopped) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    out_dir = report_dir(args.output_dir, args.pipeline, name)
    paths = write_report(variants, name, metric, out_dir, f"{args.pipeline}: {name} = {', '.join(values)}")
    with open(paths["table"]) as f:
        print(f.read())
    print(f"overlay plot: {paths['plot']}")
    return EXIT_OK


def cmd_list(args) -> int:
    from pipelines.registry import PIPELINES

    width = max(len(n) for n in PIPELINES)
    for name, entry in sorted(PIPELINES.items()):
        print(f"{name:<{width}}  {entry.description}")
    return EXIT_OK


def _when(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def cmd_compare_runs(args) -> int:
    from pipelines import compare_runs

    if len(args.run) < 2:
        raise UsageError("compare-runs needs at least two runs")
    store_path = os.path.join(args.output_dir, "metadata.sqlite")
    if not args.metadata_config and not os.path.exists(store_path):
        raise UsageError(f"no runs recorded yet (no metadata store at {store_path})")
    try:
        views = compare_runs.collect(_open_store(args), args.pipeline, args.run)
    except ValueError as error:
        raise UsageError(str(error)) from None
    text = compare_runs.report_text(args.pipeline, views)
    print(text)
    if args.report:
        os.makedirs(args.report, exist_ok=True)
        with open(os.path.join(args.report, "comparison.md"), "w") as f:
            f.write(text)
        compare_runs.plot_curves(views, os.path.join(args.report, "curves.png"))
        print(f"report: {args.report}/comparison.md, {args.report}/curves.png")
    return EXIT_OK


def cmd_runs(args) -> int:
    store_path = os.path.join(args.output_dir, "metadata.sqlite")
    if not args.metadata_config and os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise UsageError(f"--output-dir {args.output_dir} is a file, not a folder of runs")
    if not args.metadata_config and not os.path.exists(store_path):
        print(f"no runs of {args.pipeline} yet (no metadata store at {store_path})")
        return EXIT_OK
    store = _open_store(args)
    runs = store.runs(args.pipeline)
    if not runs:
        print(f"no runs of {args.pipeline} yet")
        return EXIT_OK
    shown = runs[-args.last :] if args.last > 0 else runs
    for run in shown:
        print(f"run {run.name} (id {run.id})  started {_when(run.create_time)}")
        for e in run.executions:
            cache = f" (cache hit of execution {e.cached_from})" if e.state == "CACHED" else ""
            print(f"  {e.component_id:<20} {e.state:<9} {e.duration:7.1f}s  execution {e.id}{cache}")
            if e.state == "ABANDONED":
                print("      its runner died before it finished (the next run starts this step again)")
            for key, artifact in e.outputs:
                producer = store.producer_of(artifact.id)
                print(
                    f"      {key}: {artifact.type_name} #{artifact.id} {artifact.uri}  (produced by execution {producer})"
                )
            if e.state == "FAILED" and e.error:
                print(f"      error: {e.error_line}")
    return EXIT_OK


def _import_quietly() -> None:
    """TFDV prints an IPython notice on import; it is about notebooks, not this tool."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import tensorflow_data_validation  # noqa: F401 - imported once here, its IPython notice swallowed


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("run", "validate"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra and not any(a.startswith("--") for a in extra):  # words alone; with options, Beam's check says which
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # Beam's, absl's and matplotlib's warnings (no python-snappy, tables in tf.function, font fallbacks)
        # are not the user's to fix.
        # The levels alone do not hold: a library may set its logger's level again after this (absl's
        # did, during Transform), so the handlers drop those records too.
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        for handler in logging.getLogger().handlers:
            handler.addFilter(_errors_only_from_quiet_loggers)
    try:
        check_usage(args)
    except UsageError as error:
        print(f"python -m pipelines {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "list":  # names and descriptions: nothing to import
        return cmd_list(args)
    if args.command == "validate":
        from pipelines.validate_checks import EXIT_UNUSABLE, UnusableInput, check_data_file

        try:  # a file that is not there is answered before the imports
            check_data_file(args.data)
        except UnusableInput as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_UNUSABLE
    # After the settings above: what each command goes on to import (Beam, TensorFlow) reads them on import.
    from components.base.interrupt import EXIT_TERMINATED, Terminated, sigterm_interrupts
    from pipelines.engines import EngineUnavailable
    from pipelines.metadata import StoreUnreachable, StoreUnreadable

    with sigterm_interrupts():  # `kill` stops a run as Ctrl-C does: workers stopped, the component recorded
        try:
            if args.command == "run":
                return cmd_run(args, extra)
            if args.command == "validate":
                return cmd_validate(args, extra)
            if args.command == "compare":
                return cmd_compare(args)
            if args.command == "runs":
                return cmd_runs(args)
            if args.command == "compare-runs":
                return cmd_compare_runs(args)
        except UsageError as error:
            print(f"python -m pipelines {args.command}: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        except EngineUnavailable as error:
            print(f"python -m pipelines {args.command}: error: {error}", file=sys.stderr)
            return EXIT_ENGINE
        except StoreUnreadable as error:
            print(f"python -m pipelines {args.command}: error: {error} or choose another --output-dir", file=sys.stderr)
            return EXIT_USAGE
        except StoreUnreachable as error:
            print(f"python -m pipelines {args.command}: error: {error}", file=sys.stderr)
            return EXIT_ENGINE
        except Terminated:
            print(
                "terminated (SIGTERM): the running component is recorded as failed; re-run to resume", file=sys.stderr
            )
            return EXIT_TERMINATED
        except KeyboardInterrupt:
            print("interrupted: the running component is recorded as failed; re-run to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as error:  # noqa: BLE001 - one line for the user, the traceback with -v
            if args.verbose:
                raise
            if _disk_full(error):
                then = (
                    f"under {args.output_dir}); free some space and re-run: finished components are kept and "
                    "the run resumes from the one that stopped"
                    if args.command in ("run", "compare")
                    else "); free some space and run it again"
                )
                print(f"error: the disk is full ({type(error).__name__} {then}", file=sys.stderr)
                return EXIT_FAILED
            message = (str(error).strip().splitlines() or [""])[-1]
            print(f"internal error: {type(error).__name__}: {message} (run with -v for the traceback)", file=sys.stderr)
            return EXIT_INTERNAL
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE
