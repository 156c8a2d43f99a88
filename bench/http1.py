"""A lean HTTP/1.1 client for load generation: one pre-encoded request sent over keep-alive
connections from a pool, the status read back, the body skipped. aiohttp's client costs several times
the CPU per request, and a generator that shares the server's cores must spend as little as it can, or
it measures itself (bench/open_loop.py reports its own event-loop lag for that reason)."""

from __future__ import annotations

import asyncio


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.keep_alive = True

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        self.keep_alive = headers.get("connection", "").lower() != "close"
        self.waiter.set_result(int(head[0].split(" ", 2)[1]))

    def connection_lost(self, exc) -> None:
        self.keep_alive = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection closed: {exc}"))


class Http1Pool:
    """POST one body to one path; `request` returns the HTTP status, raises TimeoutError past the
    deadline (closing that connection, as a client that gives up does) or ConnectionError."""

    def __init__(self, host: str, port: int, path: str, body: bytes, keep_alive: bool = True) -> None:
        self.host, self.port, self.keep_alive = host, port, keep_alive
        headers = [
            f"POST {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *([] if keep_alive else ["Connection: close"]),
        ]
        self.message = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
        self.idle: list[_Connection] = []

    async def request(self, timeout: float) -> int:
        loop = asyncio.get_running_loop()
        connection = None
        try:
            async with asyncio.timeout(timeout):
                if self.idle:
                    connection = self.idle.pop()
                else:
                    _, connection = await loop.create_connection(_Connection, self.host, self.port)
                connection.waiter = loop.create_future()
                connection.transport.write(self.message)
                status = await connection.waiter
        except BaseException:
            if connection is not None and connection.transport is not None:
                connection.transport.close()
            raise
        if self.keep_alive and connection.keep_alive:
            self.idle.append(connection)
        else:
            connection.transport.close()
        return status

    def close(self) -> None:
        for connection in self.idle:
            connection.transport.close()
        self.idle.clear()
