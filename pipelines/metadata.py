"""The pipeline's record in ML Metadata: contexts, executions, artifacts, lineage.

SQLite by default; any `ConnectionConfig` (MySQL included) by configuration.
Nothing else in the project talks to the MLMD store directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import functools
import os
import random
import socket
import time
from typing import Callable, Iterable, Iterator

from google.protobuf import text_format
from ml_metadata import errors as mlmd_errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from cluster.processes import start_time
from components.base.artifacts import DOUBLE, INT, STRING, Artifact
from components.base.tf_errors import is_node_line, without_annotations

PIPELINE_CONTEXT = "pipeline"
RUN_CONTEXT = "pipeline_run"

_KINDS = {STRING: mlmd.STRING, INT: mlmd.INT, DOUBLE: mlmd.DOUBLE}

# Execution properties every component execution carries.
_EXECUTION_PROPERTIES = {
    "component_id": mlmd.STRING,
    "pipeline_name": mlmd.STRING,
    "cache_key": mlmd.STRING,
    "code_version": mlmd.STRING,
    "parameters": mlmd.STRING,
    "execution_dir": mlmd.STRING,
    "start_time": mlmd.DOUBLE,
    "end_time": mlmd.DOUBLE,
    "error": mlmd.STRING,
    "cached_from": mlmd.INT,
}

ABANDONED = "ABANDONED"  # shown for an execution whose runner died (stored as CANCELED, abandoned=1)

STATE_NAMES = {
    mlmd.Execution.RUNNING: "RUNNING",
    mlmd.Execution.COMPLETE: "COMPLETE",
    mlmd.Execution.FAILED: "FAILED",
    mlmd.Execution.CACHED: "CACHED",
    mlmd.Execution.CANCELED: "CANCELED",
    mlmd.Execution.NEW: "NEW",
    mlmd.Execution.UNKNOWN: "UNKNOWN",
}


def sqlite_config(path: str) -> mlmd.ConnectionConfig:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return config


def load_connection_config(path: str) -> mlmd.ConnectionConfig:
    """A `ConnectionConfig` in protobuf text format, e.g. `mysql { host: ... database: ... }`."""
    with open(path) as f:
        return text_format.Parse(f.read(), mlmd.ConnectionConfig())


def error_line(text: str) -> str:
    """The line of an error (a message or a whole traceback) that says what went wrong: its last,
    where Beam and Python put the cause, less TensorFlow's annotations. A TensorFlow op error ends
    in a line that names only the graph node (`[[{{node ParallelInterleaveDatasetV4/_12}}]]
    [Op:MakeIterator] name:`), and its message starts with the function's internal name."""
    lines = [without_annotations(line) for line in text.strip().splitlines() if not is_node_line(line)]
    lines = [line for line in lines if line]
    return lines[-1] if lines else ""


@dataclasses.dataclass
class ExecutionRecord:
    """An execution as `pipelines runs` shows it."""

    id: int
    component_id: str
    state: str
    start_time: float
    end_time: float
    error: str
    cached_from: int
    inputs: list[Artifact]
    outputs: list[tuple[str, Artifact]]
    parameters: str = ""  # the component's parameters as the cache key saw them (JSON)

    @property
    def duration(self) -> float:
        return max(0.0, self.end_time - self.start_time) if self.end_time else 0.0

    @property
    def error_line(self) -> str:
        """The recorded traceback's one line for a listing (`error_line`)."""
        return error_line(self.error)


@dataclasses.dataclass
class RunRecord:
    id: int
    name: str
    pipeline_name: str
    create_time: float
    executions: list[ExecutionRecord]


def _props(message, values: dict, kinds: dict[str, int]) -> None:
    for name, value in values.items():
        if value is None:
            continue
        target = message.properties if name in kinds else message.custom_properties
        kind = kinds.get(name)
        if kind == mlmd.INT or (kind is None and isinstance(value, (bool, int))):
            target[name].int_value = int(value)
        elif kind == mlmd.DOUBLE or (kind is None and isinstance(value, float)):
            target[name].double_value = float(value)
        else:
            target[name].string_value = str(value)


def _read_props(message) -> dict:
    out = {}
    for props in (message.custom_properties, message.properties):
        for name, value in props.items():
            field = value.WhichOneof("value")
            out[name] = getattr(value, field) if field else None
    return out


def runner_identity() -> dict:
    """Execution properties that let a later runner or listing tell whether this runner still lives."""
    return {
        "runner_pid": os.getpid(),
        "runner_host": socket.gethostname(),
        "runner_start": start_time(os.getpid()) or "",
    }


def runner_alive(props: dict) -> bool | None:
    """Whether the runner an execution names is alive: None when that cannot be told here (another host,
    or an execution recorded without the runner's identity)."""
    pid, host = props.get("runner_pid"), props.get("runner_host")
    if not pid or host != socket.gethostname():
        return None
    started = start_time(int(pid))
    return started is not None and (not props.get("runner_start") or started == props["runner_start"])


class StoreBusy(RuntimeError):
    """Another runner holds the SQLite store and did not let go in time."""


# MySQL answers concurrent writers with deadlocks and lock timeouts; the transaction was
# rolled back, so the same call can simply be made again.
_TRANSIENT = ("deadlock", "lock wait timeout", "try restarting transaction", "database is locked")


def _transient(error: Exception) -> bool:
    if isinstance(error, (mlmd_errors.AbortedError, mlmd_errors.UnavailableError)):
        return True
    return isinstance(error, mlmd_errors.StatusError) and any(t in str(error).lower() for t in _TRANSIENT)


class _RetryingStore:
    """ML Metadata's store, each call retried (with jittered back-off) on transient errors."""

    def __init__(self, store: metadata_store.MetadataStore, attempts: int = 8) -> None:
        self._store = store
        self._attempts = attempts

    def __getattr__(self, name: str):
        method = getattr(self._store, name)

        @functools.wraps(method)
        def call(*args, **kwargs):
            for attempt in range(self._attempts):
                try:
                    return method(*args, **kwargs)
                except Exception as error:  # noqa: BLE001 - only the transient ones are retried
                    if attempt == self._attempts - 1 or not _transient(error):
                        raise
                    time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
            raise AssertionError("unreachable")

        return call


def _put_type(put: Callable[[], int]) -> int:
    """Two writers registering the same type at once: the loser's insert fails, its retry finds the type."""
    try:
        return put()
    except mlmd_errors.AlreadyExistsError:
        return put()


def _connect(config: mlmd.ConnectionConfig, attempts: int = 10) -> metadata_store.MetadataStore:
    """Two first connections to an empty MySQL database race to create MLMD's tables; the loser
    sees a half-made schema and MLMD asks to retry."""
    for attempt in range(attempts):
        try:
            return metadata_store.MetadataStore(config)
        except RuntimeError as error:
            message = str(error).lower()
            if attempt == attempts - 1 or not ("retry" in message or any(t in message for t in _TRANSIENT)):
                raise
            time.sleep(0.2 * (attempt + 1) * (0.5 + random.random()))
    raise AssertionError("unreachable")


class StoreUnreadable(RuntimeError):
    """The SQLite file named as the store is not one ML Metadata can use; the message says which and what to do.

    `path` and `reason` are kept apart, so that each caller can add its own remedy (the CLI: another
    --output-dir; the runs page has none to offer)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(
            f"the metadata store {path} cannot be used: {reason}; move it aside (the next run starts a new one)"
        )


SQLITE_HEADER = b"SQLite format 3\x00"


def _check_sqlite_file(path: str) -> None:
    """A directory, or a file that is not SQLite (a copy gone wrong, another program's file), would
    reach the user as MLMD's SQL error and an internal-error exit (or a 500 on the runs page)."""
    reason = None
    if os.path.isdir(path):
        reason = "it is a directory"
    elif os.path.isfile(path) and os.path.getsize(path) > 0:
        try:
            with open(path, "rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except OSError as error:
            reason = f"it cannot be read ({error.strerror})"
        else:
            if head != SQLITE_HEADER:
                reason = "it is not a SQLite database"
    if reason:
        raise StoreUnreadable(path, reason)


class StoreUnreachable(RuntimeError):
    """A MySQL (MariaDB) metadata store that does not answer: the message names where it was looked for."""


def _unreachable(config: mlmd.ConnectionConfig, error: RuntimeError) -> StoreUnreachable:
    mysql = config.mysql
    where = f"{mysql.host or 'localhost'}:{mysql.port or 3306}" if not mysql.socket else mysql.socket
    said = str(error).split("failed:", 1)[-1].replace("errno: , error:", "").strip()
    return StoreUnreachable(
        f"cannot connect to the MySQL metadata store at {where} (database {mysql.database!r})"
        + (f": {said}" if said else "; is its server running, and the address, user and password right?")
    )


class MetadataStore:
    def __init__(self, config: mlmd.ConnectionConfig) -> None:
        self.config = config
        if config.HasField("sqlite"):
            _check_sqlite_file(config.sqlite.filename_uri)
        try:
            connection = _connect(config)
        except RuntimeError as error:  # MLMD's "mysql_real_connect failed: errno: , error: " and no more
            if config.HasField("mysql") and "mysql_real_connect" in str(error):
                raise _unreachable(config, error) from None
            raise
        self.store = _RetryingStore(connection)
        self._type_ids: dict[tuple[str, str], int] = {}

    @property
    def sqlite_path(self) -> str | None:
        return self.config.sqlite.filename_uri if self.config.HasField("sqlite") else None

    @contextlib.contextmanager
    def exclusive(self, wait_s: float | None = None, say: Callable[[str], None] = print) -> Iterator[None]:
        """On SQLite, one runner at a time: wait for the store's lock (up to `wait_s`, None = as long as it
        takes), saying who holds it; raise StoreBusy when the wait runs out. MySQL takes concurrent runners."""
        if self.sqlite_path is None:
            yield
            return
        lock_path = self.sqlite_path + ".lock"
        with open(lock_path, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "another runner"
                say(
                    f"waiting for {self.sqlite_path}: {holder} is using it (runs on one SQLite store go one at "
                    "a time; a MySQL store takes concurrent runs)"
                )
                deadline = None if wait_s is None else time.monotonic() + wait_s
                while True:
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if deadline is not None and time.monotonic() > deadline:
                            raise StoreBusy(
                                f"{self.sqlite_path} is in use by {holder}; gave up after {wait_s:.0f}s"
                            ) from None
                        time.sleep(0.5)
            lock.seek(0)
            lock.truncate()
            started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
            lock.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}")
            lock.flush()
            try:
                yield
            finally:
                lock.seek(0)
                lock.truncate()
                lock.flush()
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- types -----------------------------------------------------------------
    def _artifact_type_id(self, cls: type[Artifact]) -> int:
        key = ("artifact", cls.TYPE_NAME)
        if key not in self._type_ids:
            t = mlmd.ArtifactType(name=cls.TYPE_NAME)
            for name, kind in cls.PROPERTIES.items():
                t.properties[name] = _KINDS[kind]
            self._type_ids[key] = _put_type(lambda: self.store.put_artifact_type(t, can_add_fields=True))
        return self._type_ids[key]

    def _execution_type_id(self, name: str) -> int:
        key = ("execution", name)
        if key not in self._type_ids:
            t = mlmd.ExecutionType(name=name)
            for prop, kind in _EXECUTION_PROPERTIES.items():
                t.properties[prop] = kind
            self._type_ids[key] = _put_type(lambda: self.store.put_execution_type(t, can_add_fields=True))
        return self._type_ids[key]

    def _context_type_id(self, name: str) -> int:
        key = ("context", name)
        if key not in self._type_ids:
            t = mlmd.ContextType(name=name)
            t.properties["pipeline_name"] = mlmd.STRING
            self._type_ids[key] = _put_type(lambda: self.store.put_context_type(t, can_add_fields=True))
        return self._type_ids[key]

    # --- contexts ----------------------------------------------------------------
    def _context(self, type_name: str, name: str, pipeline_name: str, shared: bool = True) -> mlmd.Context:
        """The context of that type and name, created if new. Not `shared`: it must be new (a run's
        own context; two runs in one would mix their executions)."""
        existing = self.store.get_context_by_type_and_name(type_name, name)
        if existing is not None and shared:
            return existing
        if existing is not None:
            raise ValueError(f"{type_name} {name!r} is already recorded: a run id is used once")
        context = mlmd.Context(type_id=self._context_type_id(type_name), name=name)
        context.properties["pipeline_name"].string_value = pipeline_name
        try:
            [context.id] = self.store.put_contexts([context])
        except mlmd_errors.AlreadyExistsError:  # a concurrent run created it first
            if not shared:
                raise ValueError(f"{type_name} {name!r} is already recorded: a run id is used once") from None
            return self.store.get_context_by_type_and_name(type_name, name)
        return context

    def start_run(self, pipeline_name: str, run_id: str) -> list[mlmd.Context]:
        return [
            self._context(PIPELINE_CONTEXT, pipeline_name, pipeline_name),
            self._context(RUN_CONTEXT, f"{pipeline_name}.{run_id}", pipeline_name, shared=False),
        ]

    # --- artifacts ---------------------------------------------------------------
    def _to_proto(self, artifact: Artifact, state: int) -> mlmd.Artifact:
        proto = mlmd.Artifact(type_id=self._artifact_type_id(type(artifact)), uri=artifact.uri, state=state)
        if artifact.id is not None:
            proto.id = artifact.id
        _props(proto, artifact.properties, {k: _KINDS[v] for k, v in artifact.PROPERTIES.items()})
        return proto

    def _from_proto(self, proto: mlmd.Artifact) -> Artifact:
        [type_proto] = self.store.get_artifact_types_by_id([proto.type_id])
        cls = Artifact.type_for(type_proto.name)
        return cls(uri=proto.uri, properties=_read_props(proto), id=proto.id)

    def artifacts_by_id(self, ids: Iterable[int]) -> list[Artifact]:
        ids = list(ids)
        by_id = {p.id: p for p in self.store.get_artifacts_by_id(ids)}
        return [self._from_proto(by_id[i]) for i in ids if i in by_id]

    def is_live(self, artifact_id: int) -> bool:
        found = self.store.get_artifacts_by_id([artifact_id])
        return bool(found) and found[0].state == mlmd.Artifact.LIVE

    # --- executions --------------------------------------------------------------
    def _input_events(self, inputs: dict[str, list[Artifact]]):
        pairs = []
        for key, artifacts in inputs.items():
            for index, artifact in enumerate(artifacts):
                event = mlmd.Event(type=mlmd.Event.INPUT)
                event.path.steps.add().key = key
                event.path.steps.add().index = index
                proto = self.store.get_artifacts_by_id([artifact.id])[0]
                pairs.append((proto, event))
        return pairs

    def start_execution(
        self,
        contexts: list[mlmd.Context],
        component_type: str,
        properties: dict,
        inputs: dict[str, list[Artifact]],
    ) -> int:
        execution = mlmd.Execution(
            type_id=self._execution_type_id(component_type),
            last_known_state=mlmd.Execution.RUNNING,
        )
        _props(execution, {**properties, "start_time": time.time()}, _EXECUTION_PROPERTIES)
        execution_id, _, _ = self.store.put_execution(
            execution, self._input_events(inputs), contexts, reuse_context_if_already_exist=True
        )
        return execution_id

    def _execution(self, execution_id: int) -> mlmd.Execution:
        return self.store.get_executions_by_id([execution_id])[0]

    def publish_execution(
        self,
        execution_id: int,
        contexts: list[mlmd.Context],
        outputs: dict[str, list[Artifact]],
        state: int = mlmd.Execution.COMPLETE,
        properties: dict | None = None,
    ) -> None:
        """Mark the execution done and its outputs LIVE, in one transaction."""
        execution = self._execution(execution_id)
        execution.last_known_state = state
        _props(execution, {**(properties or {}), "end_time": time.time()}, _EXECUTION_PROPERTIES)
        pairs, flat = [], []
        for key, artifacts in outputs.items():
            for index, artifact in enumerate(artifacts):
                event = mlmd.Event(type=mlmd.Event.OUTPUT)
                event.path.steps.add().key = key
                event.path.steps.add().index = index
                pairs.append((self._to_proto(artifact, mlmd.Artifact.LIVE), event))
                flat.append(artifact)
        _, artifact_ids, _ = self.store.put_execution(execution, pairs, contexts, reuse_context_if_already_exist=True)
        for artifact, artifact_id in zip(flat, artifact_ids):
            artifact.id = artifact_id

    def fail_execution(self, execution_id: int, contexts: list[mlmd.Context], error: str) -> None:
        execution = self._execution(execution_id)
        execution.last_known_state = mlmd.Execution.FAILED
        _props(execution, {"error": error[-4000:], "end_time": time.time()}, _EXECUTION_PROPERTIES)
        self.store.put_execution(execution, [], contexts, reuse_context_if_already_exist=True)

    def record_cached(
        self,
        contexts: list[mlmd.Context],
        component_type: str,
        properties: dict,
        inputs: dict[str, list[Artifact]],
        outputs: dict[str, list[Artifact]],
        cached_from: int,
    ) -> int:
        """A cache hit is an execution of its own, linked to the reused outputs."""
        execution_id = self.start_execution(contexts, component_type, properties, inputs)
        self.publish_execution(
            execution_id, contexts, outputs, state=mlmd.Execution.CACHED, properties={"cached_from": cached_from}
        )
        return execution_id

    def find_cached(self, component_type: str, cache_key: str) -> tuple[int, dict[str, list[Artifact]]] | None:
        """The newest COMPLETE execution with this cache key whose outputs are all LIVE and on disk."""
        from components.base import fileio  # TensorFlow's filesystems: only a run, which has them, asks this

        executions = self.store.get_executions_by_type(component_type)
        candidates = [
            e
            for e in executions
            if e.last_known_state == mlmd.Execution.COMPLETE and e.properties["cache_key"].string_value == cache_key
        ]
        for execution in sorted(candidates, key=lambda e: e.id, reverse=True):
            outputs = self._outputs_of(execution.id)
            flat = [a for artifacts in outputs.values() for a in artifacts]
            if all(self.is_live(a.id) and fileio.exists(a.uri) for a in flat):
                return execution.id, outputs
        return None

    def _events(self, execution_id: int, kind: int) -> list[mlmd.Event]:
        return [e for e in self.store.get_events_by_execution_ids([execution_id]) if e.type == kind]

    def _outputs_of(self, execution_id: int) -> dict[str, list[Artifact]]:
        events = self._events(execution_id, mlmd.Event.OUTPUT)
        artifacts = {a.id: a for a in self.artifacts_by_id(e.artifact_id for e in events)}
        outputs: dict[str, list[tuple[int, Artifact]]] = {}
        for e in events:
            key, index = e.path.steps[0].key, e.path.steps[1].index
            outputs.setdefault(key, []).append((index, artifacts[e.artifact_id]))
        return {k: [a for _, a in sorted(v, key=lambda p: p[0])] for k, v in outputs.items()}

    # --- lineage -----------------------------------------------------------------
    def producer_of(self, artifact_id: int) -> int | None:
        """The execution that actually produced an artifact (not one that reused it from cache)."""
        events = self.store.get_events_by_artifact_ids([artifact_id])
        ids = [e.execution_id for e in events if e.type == mlmd.Event.OUTPUT]
        for execution in self.store.get_executions_by_id(ids):
            if execution.last_known_state == mlmd.Execution.COMPLETE:
                return execution.id
        return None

    # --- queries for `pipelines runs` -------------------------------------------
    def sqlite_idle(self) -> bool:
        """On SQLite: no runner holds the store now (so none of its executions can still be running)."""
        if self.sqlite_path is None or not os.path.exists(self.sqlite_path + ".lock"):
            return self.sqlite_path is not None
        with open(self.sqlite_path + ".lock") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(lock, fcntl.LOCK_UN)
            return True

    def _abandoned(self, execution: mlmd.Execution, idle: bool) -> bool:
        if execution.last_known_state == mlmd.Execution.CANCELED:
            return bool(_read_props(execution).get("abandoned"))
        if execution.last_known_state != mlmd.Execution.RUNNING:
            return False
        return idle or runner_alive(_read_props(execution)) is False

    def abandon_dead_executions(
        self, contexts: list[mlmd.Context] | None = None, *, exclusive: bool = False
    ) -> list[int]:
        """Marks RUNNING executions whose runner died as abandoned (CANCELED, abandoned=1, the reason as
        the error) and returns their ids. `exclusive`: the caller holds the SQLite store, so no other
        runner can be running and every RUNNING execution is dead, whatever host it names."""
        marked = []
        for execution in self.store.get_executions():
            if execution.last_known_state != mlmd.Execution.RUNNING:
                continue
            props = _read_props(execution)
            if not exclusive and runner_alive(props) is not False:
                continue
            execution.last_known_state = mlmd.Execution.CANCELED
            who = f"pid {props.get('runner_pid', '?')} on {props.get('runner_host', '?')}"
            _props(
                execution,
                {
                    "abandoned": 1,
                    "end_time": time.time(),
                    "error": f"abandoned: its runner ({who}) died before it finished",
                },
                _EXECUTION_PROPERTIES,
            )
            self.store.put_execution(execution, [], [], reuse_context_if_already_exist=True)
            marked.append(execution.id)
        return marked

    def pipeline_names(self) -> list[str]:
        """Every pipeline that has run against this store, by name."""
        try:
            return sorted(c.name for c in self.store.get_contexts_by_type(PIPELINE_CONTEXT))
        except mlmd_errors.NotFoundError:  # no run yet: the context type does not exist
            return []

    def runs(self, pipeline_name: str) -> list[RunRecord]:
        records = []
        idle = self.sqlite_idle()
        for context in self.store.get_contexts_by_type(RUN_CONTEXT):
            if context.properties["pipeline_name"].string_value != pipeline_name:
                continue
            executions = sorted(self.store.get_executions_by_context(context.id), key=lambda e: e.id)
            records.append(
                RunRecord(
                    id=context.id,
                    name=context.name,
                    pipeline_name=pipeline_name,
                    create_time=context.create_time_since_epoch / 1000.0,
                    executions=[self._execution_record(e, idle) for e in executions],
                )
            )
        return sorted(records, key=lambda r: r.id)

    def _execution_record(self, execution: mlmd.Execution, idle: bool = False) -> ExecutionRecord:
        props = _read_props(execution)
        inputs = self.artifacts_by_id(e.artifact_id for e in self._events(execution.id, mlmd.Event.INPUT))
        outputs = [(key, a) for key, artifacts in self._outputs_of(execution.id).items() for a in artifacts]
        return ExecutionRecord(
            id=execution.id,
            component_id=props.get("component_id", ""),
            state=ABANDONED
            if self._abandoned(execution, idle)
            else STATE_NAMES.get(execution.last_known_state, "UNKNOWN"),
            start_time=props.get("start_time") or 0.0,
            end_time=props.get("end_time") or 0.0,
            error=props.get("error") or "",
            cached_from=props.get("cached_from") or 0,
            inputs=inputs,
            outputs=outputs,
            parameters=props.get("parameters") or "",
        )
