"""Benchmarks: each figure beside its baseline, measured in the same run (`make bench`)."""

# The pipeline CLI's filter for third-party notices (Google client libraries' Python-version
# FutureWarnings, one per library and process): importing it installs the filter here too.
import pipelines.cli  # noqa: F401 - imported for its side effect
