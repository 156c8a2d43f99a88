"""What `pipelines validate` answers before it imports TFDV, Beam and TensorFlow: its exit codes, and
whether the data file is there to be read at all (pipelines/validate.py does the validating); and
whether an output folder can be written, which `pipelines run` asks too."""

from __future__ import annotations

import os
import tempfile

EXIT_CLEAN, EXIT_ANOMALIES, EXIT_UNUSABLE = 0, 1, 2


class UnusableInput(ValueError):
    """The input cannot be validated at all; the message is the one line the user sees."""


def check_data_file(data: str) -> None:
    """A file that is there, not empty and readable; UnusableInput otherwise."""
    if not os.path.exists(data):
        raise UnusableInput(f"no such file: {data}")
    if not os.path.isfile(data):
        raise UnusableInput(f"not a file: {data}")
    if os.path.getsize(data) == 0:
        raise UnusableInput(f"{data}: the file is empty")
    if not os.access(data, os.R_OK):
        raise UnusableInput(f"{data}: not readable")


def folder_problem(path: str) -> str | None:
    """Why `path` cannot be a folder this process writes in (one line), or None: it is one, or the
    nearest folder above it that exists is, and that one is writable (the folder can be made)."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    try:  # a folder made and removed: what access() cannot tell, for root above all (a read-only mount, /proc)
        os.rmdir(tempfile.mkdtemp(prefix=".writable-", dir=existing))
    except OSError as error:
        return f"{existing} is not writable: {error.strerror or error}"
    return None
