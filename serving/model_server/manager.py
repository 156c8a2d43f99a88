"""Model versions: which to load (version policy), loading them in the background,
routing requests to them (versions and labels), and unloading without failing requests.

A new version is loaded and warmed up before it enters the routing table, and
an old one leaves the table first and is closed only after its last in-flight
request, so a version swap never fails a request."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from typing import Callable, Iterator

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving import layout
from serving.model_server.errors import ServingError, failed_precondition, not_found
from serving.model_server.metrics import ServerMetrics
from serving.model_server.servable import Servable, saved_model_file

log = logging.getLogger("serving.model_server")
State = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass
class VersionRecord:
    version: int
    state: int = State.START
    error: ServingError | None = None
    stamp: float = 0.0  # saved_model.pb's mtime when the load was tried: a failed version is retried only if it changes


@dataclasses.dataclass
class ManagedModel:
    config: model_server_config_pb2.ModelConfig
    versions: dict[int, VersionRecord] = dataclasses.field(default_factory=dict)
    available: dict[int, Servable] = dataclasses.field(default_factory=dict)  # the routing table


def scan_versions(base_path: str) -> dict[int, float]:
    """Version directories that hold a complete SavedModel marker: {version: mtime of saved_model.pb}."""
    try:
        names = os.listdir(base_path)
    except OSError:
        return {}
    found = {}
    for name in names:
        if not layout.is_version(name):
            continue  # .staging dirs, tmp dirs, anything that is not a version
        path = saved_model_file(os.path.join(base_path, name))
        if path:
            found[int(name)] = os.path.getmtime(path)
    return found


def aspired_versions(
    policy: model_server_config_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy, candidates: list[int]
) -> set[int]:
    candidates = sorted(candidates)
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return set(candidates)
    if which == "specific":
        return set(candidates) & set(policy.specific.versions)
    num = policy.latest.num_versions if which == "latest" and policy.latest.num_versions > 0 else 1
    return set(candidates[-num:])


class ModelManager:
    def __init__(
        self,
        config: model_server_config_pb2.ModelServerConfig,
        *,
        poll_seconds: float = 1.0,
        metrics: ServerMetrics | None = None,
        on_load: Callable[[Servable], None] | None = None,
    ) -> None:
        self._config = config
        self._poll_seconds = poll_seconds
        self._metrics = metrics or ServerMetrics()
        self._on_load = on_load or (lambda servable: None)
        self._models: dict[str, ManagedModel] = {}
        self._lock = threading.Lock()  # guards _models and every routing table
        self._sync_lock = threading.Lock()  # one loader at a time: the poller or a config reload
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._warned: set[str] = set()

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Load what the config asks for now; then keep polling in the background."""
        self.reload(self._config)
        if self._poll_seconds > 0:
            self._poller = threading.Thread(target=self._poll, name="version-poller", daemon=True)
            self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller:
            self._poller.join(timeout=10)
        with self._lock:
            servables = [s for m in self._models.values() for s in m.available.values()]
            for model in self._models.values():
                model.available = {}
        for servable in servables:
            servable.wait_idle(timeout=10)
            servable.close()

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - a poll that fails must not stop the poller
                log.exception("polling the model base paths failed")

    # --- configuration ----------------------------------------------------------------------
    def reload(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Add, update and remove models as the new config says, loading new ones before returning.

        Raises FAILED_PRECONDITION when a version label names a version that is not available."""
        wanted = {m.name: m for m in config.model_config_list.config}
        with self._sync_lock:
            with self._lock:
                removed = [self._models.pop(name) for name in list(self._models) if name not in wanted]
                for name, model_config in wanted.items():
                    if name in self._models:
                        self._models[name].config = model_config
                    else:
                        self._models[name] = ManagedModel(config=model_config)
                self._config = config
            for model in removed:
                self._unload(model, list(model.available))
            self._sync_locked()
        problems = []
        with self._lock:
            for name, model_config in wanted.items():
                for label, version in model_config.version_labels.items():
                    if version not in self._models[name].available:
                        problems.append(
                            f"label {label!r} of model {name!r} names version {version}, which is not available"
                        )
        if problems:
            raise failed_precondition("; ".join(problems))

    def sync(self) -> None:
        with self._sync_lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        with self._lock:
            models = list(self._models.values())
        for model in models:
            self._sync_model(model)

    def _sync_model(self, model: ManagedModel) -> None:
        policy = model.config.model_version_policy
        while True:
            on_disk = scan_versions(model.config.base_path)
            if not on_disk and not model.versions and model.config.name not in self._warned:
                self._warned.add(model.config.name)  # once per model, not every poll
                base = model.config.base_path
                where = (
                    "has no version directories yet"
                    if os.path.isdir(base)
                    else "is a file, not a folder"
                    if os.path.exists(base)
                    else "does not exist"
                )
                log.warning(
                    "No versions of servable %s found under base path %s (it %s)",
                    model.config.name,
                    model.config.base_path,
                    where,
                )
            candidates = [
                v
                for v, stamp in on_disk.items()
                if not (v in model.versions and model.versions[v].error and model.versions[v].stamp == stamp)
            ]
            aspired = aspired_versions(policy, candidates)
            to_load = sorted(v for v in aspired if v not in model.available)
            if not to_load:
                break
            failed = False
            for version in to_load:
                failed |= not self._load(model, version, on_disk[version])
            if not failed:
                break  # otherwise recompute: a failed version drops out and an older one may be aspired again
        with self._lock:
            gone = [v for v in model.available if v not in aspired]
        self._unload(model, gone)

    # --- loading and unloading --------------------------------------------------------------
    def _load(self, model: ManagedModel, version: int, stamp: float) -> bool:
        name = model.config.name
        record = VersionRecord(version, State.LOADING, stamp=stamp)
        with self._lock:
            model.versions[version] = record
        started = time.monotonic()
        try:
            servable = Servable(name, version, os.path.join(model.config.base_path, str(version)))
            self._on_load(servable)
        except Exception as e:  # noqa: BLE001 - a broken version is reported, never fatal
            error = e if isinstance(e, ServingError) else ServingError(_unknown(), f"{type(e).__name__}: {e}")
            with self._lock:
                record.state, record.error = State.END, error
            self._metrics.load_count.labels(name, "error").inc()
            log.error("Failed to load servable version {name: %s version: %d}: %s", name, version, error.message)
            return False
        with self._lock:
            record.state = State.AVAILABLE
            model.available = {**model.available, version: servable}
        self._metrics.load_count.labels(name, "ok").inc()
        self._metrics.load_latency.labels(name).observe(time.monotonic() - started)
        log.info(
            "Successfully loaded servable version {name: %s version: %d} in %.1fs",
            name,
            version,
            time.monotonic() - started,
        )
        return True

    def _unload(self, model: ManagedModel, versions: list[int]) -> None:
        if not versions:
            return
        with self._lock:
            servables = [model.available[v] for v in versions if v in model.available]
            model.available = {v: s for v, s in model.available.items() if v not in versions}
            for v in versions:
                if v in model.versions:
                    model.versions[v].state = State.UNLOADING

        def finish(servable: Servable) -> None:
            servable.wait_idle()  # in-flight requests on this version complete first
            servable.close()
            with self._lock:
                if servable.version in model.versions and model.versions[servable.version].state == State.UNLOADING:
                    model.versions[servable.version].state = State.END
            self._metrics.unload_count.labels(servable.name).inc()
            log.info("Unloaded servable version {name: %s version: %d}", servable.name, servable.version)

        for servable in servables:
            threading.Thread(target=finish, args=(servable,), name=f"unload-{servable.name}-{servable.version}").start()

    # --- routing ----------------------------------------------------------------------------
    def _resolve(self, name: str, version: int | None, label: str | None) -> Servable:
        model = self._models.get(name)
        if label:
            if model is None or label not in model.config.version_labels:
                raise not_found(f"Unrecognized servable version label: {label}")
            version = model.config.version_labels[label]
        if model is None or not model.available:
            request = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise not_found(f"Servable not found for request: {request}")
        if version is None:
            return model.available[max(model.available)]
        if version not in model.available:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return model.available[version]

    @contextlib.contextmanager
    def lease(self, name: str, version: int | None = None, label: str | None = None) -> Iterator[Servable]:
        """The servable a request should use, held so it cannot be unloaded under the request."""
        with self._lock:
            servable = self._resolve(name, version, label)
            servable.acquire()
        try:
            yield servable
        finally:
            servable.release()

    def statuses(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionRecord]:
        with self._lock:
            model = self._models.get(name)
            if model is None or not model.versions:
                raise not_found(f"Could not find any versions of model {name}")
            if label:
                if label not in model.config.version_labels:
                    raise not_found(f"Unrecognized servable version label: {label}")
                version = model.config.version_labels[label]
            if version is not None:
                if version not in model.versions:
                    raise not_found(f"Could not find version {version} of model {name}")
                return [dataclasses.replace(model.versions[version])]
            return [dataclasses.replace(r) for _, r in sorted(model.versions.items(), reverse=True)]

    def status_response(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """GetModelStatusResponse, the same message for gRPC and (as JSON) for REST."""
        response = get_model_status_pb2.GetModelStatusResponse()
        for record in self.statuses(name, version, label):
            status = response.model_version_status.add(version=record.version, state=record.state)
            status.status.SetInParent()  # TF Serving always sends status, error_code OK included
            if record.error:
                status.status.error_code = record.error.error_code
                status.status.error_message = record.error.message
        return response


def _unknown():
    import grpc

    return grpc.StatusCode.UNKNOWN
