"""One metadata store for many runs: concurrent runners on MySQL (a real MariaDB), one at a time on SQLite."""

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from cluster.mariadb import MariaDB, missing_binaries
from pipelines.metadata import MetadataStore, load_connection_config, sqlite_config
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"MariaDB is not installed ({', '.join(missing)} missing: apt-get install mariadb-server mariadb-client)"
        )
    server = MariaDB(str(tmp_path_factory.mktemp("mariadb")))
    server.start()
    yield server
    server.stop()


def _start_runs(count: int, root: str, store_args: list[str]) -> list[dict]:
    """`count` toy runs in separate processes, released at the same moment once every one of them has
    imported TF and Beam and opened the store (however long that takes on a busy machine)."""
    barrier = tempfile.mkdtemp(dir=os.path.dirname(root) or ".")
    go = os.path.join(barrier, "go")
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.pipelines.toy_run",
                "--root",
                root,
                "--ready",
                os.path.join(barrier, f"ready-{i}"),
                "--go",
                go,
                *store_args,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    give_up = time.monotonic() + 300
    while len([n for n in os.listdir(barrier) if n.startswith("ready-")]) < count:
        assert all(p.poll() is None for p in processes), "a toy run ended before the start"
        assert time.monotonic() < give_up, "the toy runs did not get ready within 300 s"
        time.sleep(0.05)
    open(go, "w").close()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _check_lineage(store: MetadataStore, results: list[dict]) -> None:
    for result in results:
        components = result["components"]
        for _cid, (_cached, execution_id, artifact_ids) in components.items():
            for artifact_id in artifact_ids:
                producer = store.producer_of(artifact_id)
                assert producer is not None and store.is_live(artifact_id)
                if not _cached:
                    assert producer == execution_id  # this run made it
    # Each run's Report read the Sum that its own run produced or reused.
    for result in results:
        report_execution = result["components"]["Report"][1]
        sum_outputs = set(result["components"]["Sum"][2])
        [record] = [e for run in store.runs("toy") for e in run.executions if e.id == report_execution]
        assert sum_outputs <= {a.id for a in record.inputs}


def test_two_runs_at_once_on_mysql_complete_with_lineage_and_cache_hits(mariadb, tmp_path):
    config_path = mariadb.write_connection_config(str(tmp_path / "metadata.config"))
    store_args = ["--metadata-config", config_path]
    root = str(tmp_path / "toy")
    first = _start_runs(2, root, store_args)  # an empty store: both compute, neither waits
    store = MetadataStore(load_connection_config(config_path))
    _check_lineage(store, first)
    assert len(store.runs("toy")) == 2
    second = _start_runs(2, root, store_args)  # now both find everything cached
    for result in second:
        assert all(cached for cached, _, _ in result["components"].values()), result
    _check_lineage(store, second)
    assert len(store.runs("toy")) == 4
    assert all(e.state in ("COMPLETE", "CACHED") for run in store.runs("toy") for e in run.executions)


def test_two_runners_on_one_sqlite_store_take_turns(tmp_path):
    path = str(tmp_path / "metadata.sqlite")
    results = _start_runs(2, str(tmp_path / "toy"), ["--sqlite", path])
    waited = [r for r in results if "waiting for" in r["log"]]
    assert len(waited) == 1 and "is using it" in waited[0]["log"]
    # The one that waited ran after the other had finished: every component a cache hit.
    assert all(cached for cached, _, _ in waited[0]["components"].values())
    store = MetadataStore(sqlite_config(path))
    _check_lineage(store, results)
    assert not os.path.getsize(path + ".lock")  # released, and no holder left in it


def test_a_store_held_too_long_is_refused_with_a_clear_message(tmp_path):
    from pipelines.metadata import StoreBusy

    store = MetadataStore(sqlite_config(str(tmp_path / "metadata.sqlite")))
    other = MetadataStore(sqlite_config(str(tmp_path / "metadata.sqlite")))
    said = []
    with store.exclusive():
        with pytest.raises(StoreBusy, match=r"in use by pid \d+ on .* gave up after 1s"):
            with other.exclusive(wait_s=1, say=said.append):
                pass
    assert said and "waiting for" in said[0]
    with other.exclusive(wait_s=1):  # free again
        pass


def test_a_mysql_store_that_does_not_answer_is_one_line_naming_it_and_exit_4(tmp_path):
    """MLMD's own words were "internal error: RuntimeError: mysql_real_connect failed: errno: , error: "
    (exit 3): nothing about where. Port 1 on 127.0.0.1 refuses at once; no server is needed."""
    import socket

    with socket.socket() as probe:  # port 1 is closed on any sane machine; make sure
        if probe.connect_ex(("127.0.0.1", 1)) == 0:
            pytest.skip("something listens on 127.0.0.1:1")
    config = tmp_path / "mysql.pbtxt"
    config.write_text('mysql { host: "127.0.0.1" port: 1 database: "metadata" }\n')
    data = tmp_path / "houses.csv"  # house_price has no data of its own without ../shared
    data.write_text("area,bedrooms,price\n2104,3,399900\n1600,3,329900\n")
    run = ["run", "house_price", "--data", str(data), "--output-dir", str(tmp_path / "runs")]
    for command in (["runs", "captcha"], run):
        result = subprocess.run(
            [sys.executable, "-m", "pipelines", *command, "--metadata-config", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 4 and len(lines) == 1, result.stderr
        assert "cannot connect to the MySQL metadata store at 127.0.0.1:1 (database 'metadata')" in lines[0]
    assert not (tmp_path / "runs").exists()
