"""Pinned downloads for the cluster tools, cached outside git.

Every file is named by version and checked by SHA-256 before use; a file
whose checksum does not match is deleted and the command stops with one line
saying so. The cache lives in `$TFX_MONOREPO_CACHE` (default
`~/.cache/tfx-monorepo`), so `make clean` and a fresh clone keep it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request

FLINK_VERSION = "1.16.3"
# PyPI's apache-flink-libraries sdist carries Flink's distribution jars (deps/lib, deps/bin).
FLINK_SDIST_URL = (
    "https://files.pythonhosted.org/packages/48/09/d942aad22d58b58c49ec567bf792d49a7bb47411575edcc34216878e7bbf/"
    f"apache-flink-libraries-{FLINK_VERSION}.tar.gz"
)
FLINK_SDIST_SHA256 = "d15df4185e9c507836b031879b64e18f68955dd7e90cd7d39b450513ed64ebbe"

JOB_SERVER_VERSION = "2.59.0"
JOB_SERVER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jobserver")
JOB_SERVER_MAIN = "org.apache.beam.runners.flink.FlinkJobServerDriver"


class DownloadError(RuntimeError):
    pass


def cache_dir() -> str:
    root = os.environ.get("TFX_MONOREPO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tfx-monorepo")
    os.makedirs(root, exist_ok=True)
    return root


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _say(message: str) -> None:
    print(message, flush=True)


def fetch_file(url: str, sha256: str, dest: str) -> str:
    """`url` into `dest` unless a file with that checksum is already there."""
    if os.path.isfile(dest) and sha256_of(dest) == sha256:
        return dest
    _say(f"downloading {url.rsplit('/', 1)[-1]} ...")
    part = dest + ".part"
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as error:
        raise DownloadError(f"could not download {url}: {error}") from None
    actual = sha256_of(part)
    if actual != sha256:
        os.remove(part)
        raise DownloadError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}")
    os.replace(part, dest)
    return dest


def flink_home() -> str:
    """Flink's jars (lib/, bin/bash-java-utils.jar, opt/, plugins/), unpacked once into the cache."""
    home = os.path.join(cache_dir(), f"flink-{FLINK_VERSION}")
    if os.path.isfile(os.path.join(home, "lib", f"flink-dist-{FLINK_VERSION}.jar")):
        return home
    sdist = fetch_file(
        FLINK_SDIST_URL, FLINK_SDIST_SHA256, os.path.join(cache_dir(), os.path.basename(FLINK_SDIST_URL))
    )
    _say(f"unpacking Flink {FLINK_VERSION} ...")
    prefix = f"apache-flink-libraries-{FLINK_VERSION}/deps/"
    staging = tempfile.mkdtemp(dir=cache_dir(), prefix="flink-unpack-")
    try:
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix) and (m.isfile() or m.isdir())]
            for member in members:
                member.name = member.name[len(prefix) :]
            tar.extractall(staging, members=[m for m in members if m.name], filter="data")
        shutil.rmtree(home, ignore_errors=True)
        os.replace(staging, home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


def _pinned_jars() -> dict[str, str]:
    pins = {}
    with open(os.path.join(JOB_SERVER_DIR, "jars.sha256")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                digest, name = line.split()
                pins[name] = digest
    return pins


def _check_jars(lib: str, pins: dict[str, str]) -> list[str]:
    """Names of pinned jars that are missing or differ (empty when all match)."""
    bad = []
    for name, digest in pins.items():
        path = os.path.join(lib, name)
        if not os.path.isfile(path) or sha256_of(path) != digest:
            bad.append(name)
    return bad


def job_server_classpath() -> str:
    """The job server's jars from Maven Central (pom.xml beside this file), checked against jars.sha256."""
    lib = os.path.join(cache_dir(), f"beam-flink-job-server-{JOB_SERVER_VERSION}", "lib")
    pins = _pinned_jars()
    if os.path.isdir(lib) and not _check_jars(lib, pins):
        return os.path.join(lib, "*")
    if shutil.which("mvn") is None:
        raise DownloadError("Maven (mvn) is needed once to fetch Beam's Flink job server: apt-get install maven")
    _say(f"fetching Beam's Flink job server {JOB_SERVER_VERSION} from Maven Central ...")
    staging = lib + ".part"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        "mvn",
        "-B",
        "-q",
        "-f",
        os.path.join(JOB_SERVER_DIR, "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        raise DownloadError("Maven could not fetch the job server: " + " | ".join(tail))
    extra = sorted(set(os.listdir(staging)) - set(pins))
    bad = _check_jars(staging, pins)
    if bad or extra:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(
            f"job server jars differ from cluster/jobserver/jars.sha256: changed or missing {bad}, unpinned {extra}"
        )
    shutil.rmtree(lib, ignore_errors=True)
    os.replace(staging, lib)
    return os.path.join(lib, "*")
