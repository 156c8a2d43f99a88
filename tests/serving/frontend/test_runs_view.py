"""serving/frontend/runs.py's reading of ML Metadata and the version folders for the models page,
which every open browser refreshes every 5 s: done again only when something changed."""

from __future__ import annotations

import os

from serving.frontend import runs


def test_the_stores_pushes_are_read_again_only_after_a_write(tmp_path, monkeypatch):
    path = tmp_path / "metadata.sqlite"
    path.write_bytes(b"first")
    reads = []
    monkeypatch.setattr(runs, "_read_pushes", lambda p: reads.append(p) or {"v": {"run_id": len(reads)}})
    monkeypatch.setattr(runs, "_PUSHES_SEEN", {})
    assert runs._pushes(str(path)) == runs._pushes(str(path)) == {"v": {"run_id": 1}}
    assert len(reads) == 1
    with open(path, "ab") as f:
        f.write(b" and a new run")
    assert runs._pushes(str(path)) == {"v": {"run_id": 2}}
    (tmp_path / "metadata.sqlite-journal").write_bytes(b"a transaction")
    assert runs._pushes(str(path)) == {"v": {"run_id": 3}} and len(reads) == 3


def test_a_version_folders_size_is_walked_once_and_again_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "_SIZES_SEEN", {})
    folder = tmp_path / "3"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"x" * 500_000)
    (folder / "variables" / "variables.data").write_bytes(b"x" * 1_500_000)
    assert runs._megabytes(str(folder)) == 2.0
    walks = []
    real_walk = os.walk
    monkeypatch.setattr(runs.os, "walk", lambda top: walks.append(top) or real_walk(top))
    assert runs._megabytes(str(folder)) == 2.0 and walks == []
    (folder / "assets.extra").mkdir()  # the folder itself changes: walked again
    assert runs._megabytes(str(folder)) == 2.0 and walks == [str(folder)]
    assert runs._megabytes(str(tmp_path / "gone")) == 0.0
