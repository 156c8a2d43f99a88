"""A throw-away MariaDB server for ML Metadata's MySQL backend.

`python -m cluster.mariadb up [--data-dir DIR] [--port N]` starts Debian's
MariaDB on 127.0.0.1 in its own data directory, creates the `mlmd` database
and writes `<data-dir>/metadata.config`, a ConnectionConfig that
`python -m pipelines run ... --metadata-config` reads. `down` stops it. The
tests use the same class, each on a temporary directory and a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

from cluster.flink import free_port, wait_for_port

DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".mariadb")
BINARIES = ("mariadb-install-db", "mariadbd", "mariadb")


class MariaDBError(RuntimeError):
    pass


def missing_binaries() -> list[str]:
    search = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return [b for b in BINARIES if shutil.which(b, path=search) is None]


def _binary(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin")
    if found is None:
        raise MariaDBError(f"{name} not found: apt-get install mariadb-server mariadb-client")
    return found


class MariaDB:
    def __init__(self, data_dir: str, port: int | None = None, host: str = "127.0.0.1", database: str = "mlmd") -> None:
        self.root = os.path.abspath(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.database = database
        self.process: subprocess.Popen | None = None

    @property
    def datadir(self) -> str:
        return os.path.join(self.root, "data")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.root, "mariadbd.pid")

    def start(self, timeout: float = 60.0) -> "MariaDB":
        os.makedirs(self.root, exist_ok=True)
        if not os.path.isdir(os.path.join(self.datadir, "mysql")):
            done = subprocess.run(
                [
                    _binary("mariadb-install-db"),
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise MariaDBError(f"mariadb-install-db failed: {(done.stdout + done.stderr).strip()[-400:]}")
        command = [
            _binary("mariadbd"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--socket={os.path.join(self.root, 'mariadbd.sock')}",
            f"--pid-file={self.pid_file}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=64M",
            "--max-connections=200",
        ]
        if os.geteuid() == 0:
            command.append("--user=root")
        log = open(os.path.join(self.root, "mariadbd.log"), "ab")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        if not wait_for_port(self.host, self.port, self.process, timeout):
            self.stop()
            raise MariaDBError(f"MariaDB did not start on {self.host}:{self.port}; see {self.root}/mariadbd.log")
        self.sql(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
        return self

    def sql(self, statement: str) -> str:
        done = subprocess.run(
            [_binary("mariadb"), "--no-defaults", f"-h{self.host}", f"-P{self.port}", "-uroot", "-N", "-e", statement],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise MariaDBError(f"SQL failed ({statement}): {done.stderr.strip()}")
        return done.stdout

    def connection_config_text(self) -> str:
        return f'mysql {{ host: "{self.host}" port: {self.port} database: "{self.database}" user: "root" }}\n'

    def write_connection_config(self, path: str | None = None) -> str:
        path = path or os.path.join(self.root, "metadata.config")
        with open(path, "w") as f:
            f.write(self.connection_config_text())
        return path

    def stop(self) -> None:
        pid = None
        if self.process is not None:
            pid = self.process.pid
        elif os.path.isfile(self.pid_file):
            with open(self.pid_file) as f:
                pid = int(f.read().strip() or 0) or None
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)

    def __enter__(self) -> "MariaDB":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.mariadb", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--port", type=int, default=3306)
    args = parser.parse_args(argv)
    server = MariaDB(args.data_dir, port=args.port)
    try:
        if args.command == "up":
            server.start()
            # The server outlives this command: forget the handle so nothing stops it on exit.
            server.process = None
            print(
                f"MariaDB on {server.host}:{server.port}, database {server.database}; "
                f"--metadata-config {server.write_connection_config()}"
            )
        else:
            server.stop()
            print("MariaDB stopped")
    except MariaDBError as error:
        print(f"mariadb: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
