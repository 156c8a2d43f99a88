"""REST bodies sent with Content-Encoding gzip or deflate (aiohttp inflates them as they are read), and
HTTP messages aiohttp cannot parse: a real server over 127.0.0.1, raw sockets where a client library
would not send such bytes.

Before: the size limit was checked on the inflated body but the body budget counted the Content-Length,
and aiohttp inflated up to the whole limit at once, so eight 1 MB gzip bodies of spaces lifted the
server's peak RSS by 980 MB and left it 530 MB larger; a body that was not the gzip it claimed got
a 500 and a traceback; every malformed HTTP message logged a traceback (BENCHMARKS.md, issue #13)."""

from __future__ import annotations

import concurrent.futures
import gzip
import json
import socket
import time
import zlib

import pytest
import requests

from bench.reliability_bench import connection_sending
from tests.serving.model_server.test_slow_clients import BODY, PREDICT, _answer, _served
from tests.serving.toy_model import toy_server, write_toy_model


@pytest.fixture
def toy(tmp_path):
    write_toy_model(str(tmp_path / "toy"), 1)
    return str(tmp_path / "toy")


def _gzip_of_spaces(size: int) -> bytes:
    """`{"instances": [1.0` then `size` spaces then `]}`, gzip-compressed (about a thousandth of it)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(b'{"instances": [1.0')]
    block = b" " * (1 << 20)
    for _ in range(size // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.compress(b" " * (size % len(block)) + b"]}"))
    return b"".join(parts) + compressor.flush()


def _post_gzip(server, body: bytes, encoding: str = "gzip") -> requests.Response:
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    return requests.post(server.rest_url + PREDICT, data=body, headers=headers, timeout=60)


def _rss_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def test_gzip_and_deflate_bodies_are_read_and_a_bad_one_is_a_400_on_a_closed_connection(toy, tmp_path):
    server = toy_server(toy, log_path=str(tmp_path / "s.log")).wait_ready()
    try:
        for encoding, body in (("gzip", gzip.compress(BODY)), ("deflate", zlib.compress(BODY))):
            answer = _post_gzip(server, body, encoding)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"predictions": [1.5, 2.0]}
        for encoding in ("gzip", "deflate"):
            answer = _post_gzip(server, b"not compressed at all", encoding)
            assert answer.status_code == 400
            assert (
                answer.json()["error"]
                == f"Could not read the request body: Can not decode content-encoding: {encoding}"
            )
            assert answer.headers["Connection"] == "close"  # the rest of that stream cannot be read
        # aiohttp's own 400s for messages it cannot parse, each logged as one line
        for head in (
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcde",
        ):
            sock = connection_sending(server.rest_port, f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n".encode() + head)
            assert _answer(sock, timeout=10).startswith(b"HTTP/1.0 400")
            sock.close()
        assert _served(server) == (200, [1.5])
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log and " E " not in log, log[-3000:]
    assert "W Error handling request from 127.0.0.1: 400 Invalid character in chunk size" in log
    assert "W Error handling request from 127.0.0.1: 400 Duplicate Content-Length" in log


def test_inflated_bytes_count_against_the_size_limit_and_the_body_budget(toy, tmp_path):
    server = toy_server(
        toy,
        "--max_request_bytes",
        "1000000",
        "--rest_max_body_bytes_in_flight",
        "600000",
        "--rest_api_timeout_in_ms",
        "3000",
        log_path=str(tmp_path / "s.log"),
    ).wait_ready()
    try:
        bomb = _gzip_of_spaces(20_000_000)
        assert len(bomb) < 40_000
        refused = _post_gzip(server, bomb)
        assert refused.status_code == 413
        assert refused.json() == {"error": "Maximum request body size 1000000 exceeded."}
        # not drained: aiohttp would inflate the rest of the bomb only to discard it
        assert refused.headers["Connection"] == "close"
        assert _post_gzip(server, _gzip_of_spaces(500_000)).json() == {"predictions": [1.5]}

        # 800 kB once inflated from under 1 kB on the wire, all but its gzip trailer sent: alone it may
        # pass the 600 kB budget, but while the server holds it another body is refused at once.
        held = _gzip_of_spaces(800_000)
        head = (
            f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(held)}\r\n\r\n"
        )
        stalled = connection_sending(server.rest_port, head.encode() + held[:-8])
        time.sleep(0.5)
        started = time.monotonic()
        busy = requests.post(server.rest_url + PREDICT, data=BODY, timeout=30)
        assert busy.status_code == 503 and time.monotonic() - started < 2
        assert "bytes of request bodies held" in busy.json()["error"]
        assert _answer(stalled, timeout=20).startswith(b"HTTP/1.1 408")  # the REST timeout, then its bytes are free
        stalled.close()
        assert _served(server) == (200, [1.5])
    finally:
        server.stop()


def test_many_gzip_bodies_at_once_hold_no_more_than_the_budget(toy, tmp_path):
    """Eight bodies of 70 MiB of spaces once inflated (70 kB each on the wire), past the default 64 MiB
    limit, against a body budget of 128 MiB: what the server holds at once stays within the budget."""
    budget = 128 << 20
    server = toy_server(toy, "--rest_max_body_bytes_in_flight", str(budget), log_path=str(tmp_path / "s.log"))
    server.wait_ready()
    try:
        bomb = _gzip_of_spaces(70 << 20)
        pid = server.process.pid
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # the peak RSS starts again from the current one
        before = _rss_kib(pid, "VmRSS")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _post_gzip(server, bomb), range(8)))
        statuses = [a.status_code for a in answers]
        assert set(statuses) <= {413, 503} and 413 in statuses, statuses
        assert all(a.json()["error"] for a in answers)
        peak = (_rss_kib(pid, "VmHWM") - before) * 1024
        # Before, the budget counted each body's 70 kB and each was inflated up to the whole limit
        # at once: 8 such bodies lifted the peak by 980 MiB (a 1 MB variant, the captcha model).
        assert peak < budget + (96 << 20), f"peak RSS rose {peak >> 20} MiB"
        answer = requests.post(server.rest_url + PREDICT, data=BODY, timeout=30)
        assert json.loads(answer.text) == {"predictions": [1.5, 2.0]}
    finally:
        server.stop()


def test_a_socket_that_sends_a_bad_gzip_body_cannot_send_another_request_on_it(toy, tmp_path):
    """The 400 closes the connection: the bytes after the broken stream are never read as a request."""
    server = toy_server(toy, log_path=str(tmp_path / "s.log")).wait_ready()
    try:
        bad = b"\x1f\x8bnot really gzip"
        second = f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY
        head = f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {len(bad)}\r\n\r\n"
        sock = connection_sending(server.rest_port, head.encode() + bad + second)
        sock.settimeout(10)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, socket.timeout, ConnectionResetError):
            pass
        sock.close()
        assert received.startswith(b"HTTP/1.1 400")
        assert received.count(b"HTTP/1.1 ") == 1, received
    finally:
        server.stop()
