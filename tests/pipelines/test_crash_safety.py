"""A runner killed with SIGKILL at each component boundary, inside executors and inside the Pusher's copy:
nothing half-written is LIVE or served, the dead execution is shown abandoned, and the next run finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipelines.metadata import ABANDONED, MetadataStore, sqlite_config
from tests.conftest import ROOT

# One kill per point, in this order, on one store: each run resumes what the last one left.
KILL_POINTS = [
    "before:NumbersGen",
    "after:NumbersGen",
    "during:Sum",
    "after:Sum",
    "during:ToyTrainer",
    "after:ToyTrainer",
    "after:ToyBless",
    "pusher-copy",
    "after:Pusher",
]


def _run(paths: dict, kill_at: str | None = None) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        "-m",
        "tests.pipelines.crash_run",
        "--root",
        paths["root"],
        "--sqlite",
        paths["sqlite"],
        "--serving",
        paths["serving"],
    ]
    # Its temporary files (AutoGraph's generated sources, which it deletes only at a normal exit) go
    # under the test's folder, not into /tmp, since SIGKILL leaves them behind.
    scratch = os.path.join(os.path.dirname(paths["root"]), "scratch")
    os.makedirs(scratch, exist_ok=True)
    return subprocess.run(
        args + (["--kill-at", kill_at] if kill_at else []),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT, "TMPDIR": scratch},
    )


def _relative_files(root: str) -> dict[str, int]:
    return {
        os.path.relpath(os.path.join(d, n), root): os.path.getsize(os.path.join(d, n))
        for d, _, names in os.walk(root)
        for n in names
    }


def _check_nothing_half_written_is_live_or_served(paths: dict, reference: dict[str, int] | None) -> None:
    store = MetadataStore(sqlite_config(paths["sqlite"]))
    for artifact in store.store.get_artifacts():
        if artifact.state == mlmd.Artifact.LIVE:
            assert ".staging" not in artifact.uri and os.path.isdir(artifact.uri), artifact.uri
    base = os.path.join(paths["serving"], "toy")
    served = [name for name in (os.listdir(base) if os.path.isdir(base) else []) if name.isdigit()]
    for version in served:  # what a server would load: only complete copies
        files = _relative_files(os.path.join(base, version))
        assert "saved_model.pb" in files
        if reference is not None:
            assert files == reference, version


@pytest.mark.slow  # pipeline runs killed and re-run
def test_sigkill_anywhere_leaves_nothing_half_written_live_or_served(tmp_path):
    paths = {
        "root": str(tmp_path / "runs"),
        "sqlite": str(tmp_path / "metadata.sqlite"),
        "serving": str(tmp_path / "serving"),
    }
    reference = None
    for point in KILL_POINTS:
        result = _run(paths, point)
        assert result.returncode == -signal.SIGKILL, (point, result.stderr[-2000:])
        trained = (
            [p for p in (tmp_path / "runs" / "ToyTrainer").glob("*/model/serving_model")]
            if (tmp_path / "runs" / "ToyTrainer").is_dir()
            else []
        )
        if trained and reference is None:
            reference = _relative_files(str(trained[0]))
        _check_nothing_half_written_is_live_or_served(paths, reference)
        store = MetadataStore(sqlite_config(paths["sqlite"]))
        running = [e for e in store.store.get_executions() if e.last_known_state == mlmd.Execution.RUNNING]
        if point.startswith("during:") or point == "pusher-copy":
            # Killed inside an execution: still RUNNING in the store until the next run marks it, but a
            # listing already shows it abandoned (no runner holds the store), never RUNNING forever.
            assert len(running) == 1
            listed = {e.id: e.state for run in store.runs("crash") for e in run.executions}
            assert listed[running[0].id] == ABANDONED
            assert "RUNNING" not in listed.values()
        else:
            assert not running  # the run that started after the last kill marked that one

    final = _run(paths)
    assert final.returncode == 0, final.stderr[-3000:]
    output = json.loads(final.stdout)
    store = MetadataStore(sqlite_config(paths["sqlite"]))
    assert not [e for e in store.store.get_executions() if e.last_known_state == mlmd.Execution.RUNNING]
    stored = {
        e.properties["component_id"].string_value: e.properties["error"].string_value
        for e in store.store.get_executions()
        if e.custom_properties.get("abandoned")
    }
    assert set(stored) == {"Sum", "ToyTrainer", "Pusher"} and all("died" in error for error in stored.values())
    assert output["components"]["NumbersGen"][0] is True  # a cache hit: finished work is never redone
    _check_nothing_half_written_is_live_or_served(paths, reference)
    base = os.path.join(paths["serving"], "toy")
    assert sorted(n for n in os.listdir(base) if n.isdigit()) == ["1"]  # pushed once: after:Pusher was complete
