"""The load generator's lean HTTP/1.1 client against a real aiohttp server on 127.0.0.1."""

import asyncio
import json

import pytest
from aiohttp import web

from bench.http1 import Http1Pool


async def _server(handler):
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp has no port getter


def test_statuses_come_back_over_one_kept_alive_connection():
    seen = {"peers": set(), "bodies": []}

    async def handler(request):
        seen["peers"].add(request.transport.get_extra_info("peername"))
        body = await request.json()
        seen["bodies"].append(body)
        return web.json_response({"n": body["n"]}, status=200 if body["n"] % 2 else 503)

    async def main():
        runner, port = await _server(handler)
        try:
            pool = Http1Pool("127.0.0.1", port, "/v1/models/m:predict", json.dumps({"n": 3}).encode())
            statuses = [await pool.request(5) for _ in range(5)]
            odd = Http1Pool("127.0.0.1", port, "/x", json.dumps({"n": 4}).encode())
            statuses.append(await odd.request(5))
            pool.close()
            odd.close()
            return statuses
        finally:
            await runner.cleanup()

    assert asyncio.run(main()) == [200] * 5 + [503]
    assert len(seen["peers"]) == 2  # five requests on one connection, the sixth on the other pool's
    assert seen["bodies"] == [{"n": 3}] * 5 + [{"n": 4}]


def test_a_request_past_its_deadline_raises_and_its_connection_is_closed():
    cancelled = asyncio.Event()

    async def handler(request):
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()  # the client's close reached the server: the work is dropped
            raise
        return web.json_response({})

    async def main():
        runner, port = await _server(handler)
        try:
            pool = Http1Pool("127.0.0.1", port, "/slow", b"{}")
            with pytest.raises(TimeoutError):
                await pool.request(0.2)
            await asyncio.wait_for(cancelled.wait(), 5)
            assert pool.idle == []
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_without_keep_alive_every_request_has_a_connection_of_its_own():
    peers = set()

    async def handler(request):
        peers.add(request.transport.get_extra_info("peername"))
        await request.read()
        return web.json_response({})

    async def main():
        runner, port = await _server(handler)
        try:
            pool = Http1Pool("127.0.0.1", port, "/p", b"{}", keep_alive=False)
            assert [await pool.request(5) for _ in range(3)] == [200] * 3
            assert pool.idle == []
        finally:
            await runner.cleanup()

    asyncio.run(main())
    assert len(peers) == 3
