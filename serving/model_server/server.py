"""Wiring: the version manager, batching and warmup on load, the gRPC and REST front doors,
and polling of the model config file."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import ssl
import tempfile
import threading
import time
from typing import Any, Callable

from aiohttp import web
from google.protobuf import text_format

from serving.model_server import inference
from serving.model_server.batching import BatchScheduler
from serving.model_server.config import (
    SHUTDOWN_GRACE_S,
    ConfigError,
    ServerOptions,
    SslConfig,
    read_model_server_config,
    single_model_config,
)
from serving.model_server.errors import Admission
from serving.model_server.grpc_service import start_grpc_server
from serving.model_server.manager import ModelManager
from serving.model_server.metrics import ServerMetrics
from serving.model_server.rest import RestApi
from serving.model_server.servable import Servable

log = logging.getLogger("serving.model_server")


def new_event_loop(kind: str) -> tuple[asyncio.AbstractEventLoop, str]:
    """The loop both APIs run on, and which it is. uvloop (libuv, in C) runs grpc.aio's and aiohttp's
    per-call callbacks faster than asyncio's own loop: at 32 gRPC clients the server answered 10% more
    per second on 2 cores (BENCHMARKS.md, issue #13). `auto` falls back to asyncio where uvloop is not
    installed (it has no Windows build)."""
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass  # auto; ServerOptions refused an explicit uvloop that is not installed
        else:
            return uvloop.new_event_loop(), "uvloop"
    return asyncio.new_event_loop(), "asyncio"


def server_ssl_context(config: SslConfig) -> ssl.SSLContext:
    """The REST port's TLS, from the same SSLConfig as gRPC's: PEM text, so the key and certificate
    pass through a private temporary file (the ssl module loads chains only from files)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as scratch:
        chain = os.path.join(scratch, "server.pem")
        with open(os.open(chain, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(config.server_key.rstrip() + "\n" + config.server_cert)
        context.load_cert_chain(chain)
    if config.custom_ca:
        context.load_verify_locations(cadata=config.custom_ca)
    context.verify_mode = ssl.CERT_REQUIRED if config.client_verify else ssl.CERT_NONE
    return context


def raise_open_files_limit() -> None:
    """The soft limit on open files raised to the hard one, as servers written in Go do on start.

    Every connection takes a descriptor. At a soft limit of 1,024, common on Linux, a thousand idle
    connections to either port (they cost a client nothing) stopped both APIs: the server could
    accept nothing more, not even on the other port. The hard limit is usually far higher (524,288
    under systemd)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as e:
        log.warning("open files: cannot raise the limit of %d: %s", soft, e)
        return
    log.info("open files: limit raised from %d to %d", soft, wanted)


class ModelServer:
    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.metrics = ServerMetrics()
        if options.model_config_file:
            config = read_model_server_config(options.model_config_file)
        elif options.model_base_path:
            config = single_model_config(options.model_name, os.path.abspath(options.model_base_path))
        else:
            raise ValueError("either a model config file or a model base path is needed")
        self._config_text = text_format.MessageToString(config)
        self.manager = ModelManager(
            config, poll_seconds=options.file_system_poll_wait_seconds, metrics=self.metrics, on_load=self._prepare
        )
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self._grpc = None
        self._lag_watch: asyncio.Task | None = None
        self._rest: RestApi | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _prepare(self, servable: Servable) -> None:
        """Batching schedulers first, so warmup runs through the same path as requests."""
        params = self.options.batching
        if params:
            for name, signature in servable.signatures.items():
                if signature.batchable:
                    servable.runners[name] = BatchScheduler(
                        signature,
                        params,
                        f"{servable.name}/{servable.version}/{name}",
                        on_batch=self._batch_observer(servable.name, name),
                    )
        try:
            count = inference.warm_up(servable, params)
        except Exception:
            servable.close()
            raise
        if count:
            log.info(
                "Finished reading warmup data for model at %s. Number of warmup records read: %d.", servable.path, count
            )

    def _batch_observer(self, model: str, signature: str) -> Callable[[int, int], None]:
        def observe(rows: int, padded: int) -> None:
            self.metrics.batch_size.labels(model, signature).observe(padded)
            self.metrics.padding_size.labels(model, signature).observe(padded - rows)

        return observe

    def _admission_limit(self) -> int:
        o = self.options
        if o.max_in_flight > 0:
            return o.max_in_flight
        if o.batching is not None:  # what may wait in the queue and run, and one batch more being parsed
            b = o.batching
            return b.max_batch_size * (b.max_enqueued_batches + b.num_batch_threads + 1)
        return 4 * max(o.rest_api_num_threads, o.grpc_max_threads)

    def start(self) -> None:
        """Both APIs on one event loop, in a thread of its own."""
        raise_open_files_limit()
        self.manager.start()
        o = self.options
        self.admission = Admission(
            self._admission_limit(),
            max_loop_lag_s=o.max_loop_lag_ms / 1000,
            # An explicit --max_in_flight is a fixed count; otherwise the count follows the answer rate.
            max_wait_s=0.0 if o.max_in_flight > 0 else o.max_queue_ms / 1000,
            floor=o.batching.max_batch_size
            if o.batching is not None
            else max(o.rest_api_num_threads, o.grpc_max_threads),
        )
        loop, kind = new_event_loop(o.event_loop)
        self._loop = loop
        log.info("event loop: %s", kind)
        self._lag_watch = loop.create_task(self.admission.watch_loop())
        self._grpc, self.grpc_port = loop.run_until_complete(
            start_grpc_server(
                self.manager,
                self.metrics,
                f"{o.host}:{o.port}",
                max_workers=o.grpc_max_threads,
                max_message_bytes=o.max_request_bytes,
                channel_arguments=list(o.grpc_channel_arguments),
                reuse_port=o.reuse_port,
                ssl=o.ssl,
                admission=self.admission,
                max_pending=o.grpc_max_pending,
            )
        )
        log.info("Running gRPC ModelServer at %s:%d ...", o.host, self.grpc_port)
        if o.rest_api_port >= 0:
            self._start_rest()
            log.info("Exporting HTTP/REST API at:%s:%d ...", o.host, self.rest_port)
        self._loop_thread = threading.Thread(target=loop.run_forever, name="server-loop", daemon=True)
        self._loop_thread.start()
        if o.model_config_file and o.model_config_file_poll_wait_seconds > 0:
            threading.Thread(target=self._poll_config, name="config-poller", daemon=True).start()

    def _start_rest(self) -> None:
        o = self.options
        loop = self._loop
        assert loop is not None  # start() made it
        self._rest = RestApi(
            self.manager,
            self.metrics,
            num_threads=o.rest_api_num_threads,
            timeout_ms=o.rest_api_timeout_in_ms,
            max_request_bytes=o.max_request_bytes,
            max_body_bytes_in_flight=o.rest_max_body_bytes_in_flight,
            monitoring_path=o.monitoring_path,
            admission=self.admission,
        )
        # A client that closes its connection (its deadline passed) cancels its handler: a queued request
        # nobody waits for is dropped from the batch queue instead of run.
        # keepalive_timeout also closes a connection whose request head is still incomplete by then
        # (aiohttp starts the timer when the connection opens): aiohttp's own default is an hour.
        runner = web.AppRunner(
            self._rest.app(),
            access_log=None,
            handler_cancellation=True,
            keepalive_timeout=o.rest_api_idle_timeout_s,
            shutdown_timeout=SHUTDOWN_GRACE_S,  # aiohttp's own: 60 s
        )
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(
            runner,
            o.host,
            o.rest_api_port,
            reuse_address=True,
            reuse_port=o.reuse_port or None,
            ssl_context=server_ssl_context(o.ssl) if o.ssl else None,
        )
        loop.run_until_complete(site.start())
        server: Any = site._server  # noqa: SLF001 - aiohttp has no public port getter
        self.rest_port = server.sockets[0].getsockname()[1]
        self._runner = runner

    def _await_on_loop(self, steps: list) -> None:
        """Runs (what, coroutine) steps on the server's loop together, waiting SHUTDOWN_GRACE_S + 3 s at most."""
        assert self._loop is not None  # stop() checked
        futures = [(what, asyncio.run_coroutine_threadsafe(coroutine, self._loop)) for what, coroutine in steps]
        deadline = time.monotonic() + SHUTDOWN_GRACE_S + 3
        for what, future in futures:
            try:
                future.result(max(0.0, deadline - time.monotonic()))
            except Exception as e:  # noqa: BLE001 - the process is ending: the other steps must still run
                log.warning("stopping %s: %r", what, e)

    def _poll_config(self) -> None:
        path = self.options.model_config_file
        assert path is not None  # polled only when there is one
        while not self._stop.wait(self.options.model_config_file_poll_wait_seconds):
            try:
                config = read_model_server_config(path)
            except ConfigError as e:
                log.error("not reloading: %s", e)
                continue
            text = text_format.MessageToString(config)
            if text == self._config_text:
                continue
            self._config_text = text
            log.info("model config file %s changed; reloading", path)
            try:
                self.manager.reload(config)
            except Exception as e:  # noqa: BLE001 - keep serving what is loaded
                log.error("reloading %s: %s", path, e)

    def stop(self) -> None:
        """Stop both APIs (running calls get SHUTDOWN_GRACE_S), then the models. Each step is bounded,
        and one that fails or overruns is logged while the others still run: before, a REST client
        stalled mid-body held aiohttp's cleanup past its bound and the server exited 1 with a traceback,
        its models never stopped."""
        self._stop.set()
        loop = self._loop
        if loop is not None and self._loop_thread and self._loop_thread.is_alive():
            stopping = []  # both APIs at once
            if self._grpc:
                stopping.append(("the gRPC API", self._grpc.stop(grace=SHUTDOWN_GRACE_S)))
            if self._rest:
                stopping.append(("the REST API", self._runner.cleanup()))
            self._await_on_loop(stopping)
            if self._lag_watch is not None:
                loop.call_soon_threadsafe(self._lag_watch.cancel)
            loop.call_soon_threadsafe(loop.stop)
            self._loop_thread.join(5)
        if self._rest:
            self._rest.close()
        self.manager.stop()
