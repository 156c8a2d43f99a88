"""One way to run Beam: pipeline options come from the runner, untouched.

The same component runs on the DirectRunner here and on Flink, Spark or
Dataflow elsewhere: only the arguments differ.
"""
from __future__ import annotations

import argparse

DEFAULT_BEAM_ARGS: list[str] = []


class UnknownBeamOption(ValueError):
    pass


def _all_option_classes():
    from apache_beam.options.pipeline_options import PipelineOptions

    pending, seen = [PipelineOptions], []
    while pending:
        cls = pending.pop()
        seen.append(cls)
        pending.extend(cls.__subclasses__())
    return seen


def check_beam_args(args: list[str]) -> list[str]:
    """Return `args` unchanged if Beam knows every option in it, else raise.

    Beam itself silently drops options it does not know; a typo such as
    `--direct_num_worker=2` would then run with the default, so it is refused.
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, conflict_handler="resolve")
    for cls in _all_option_classes():
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(args)
    flags = [a for a in unknown if a.startswith("--")]
    if flags:
        raise UnknownBeamOption(f"unknown Beam pipeline option(s): {' '.join(flags)}")
    return list(args)


def make_pipeline(args: list[str]):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    return beam.Pipeline(options=PipelineOptions(list(args)))
