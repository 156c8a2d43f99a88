"""The server's configuration in TF Serving's own formats.

`models.config` is a ModelServerConfig (the proto from tensorflow-serving-api).
The batching-parameters and monitoring files use two small messages that the
pip package does not ship (they live in TF Serving's C++ tree); they are
declared here field for field, so the same text files work with the official
server and parse strictly here."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

log = logging.getLogger(__name__)

DEFAULT_MONITORING_PATH = "/monitoring/prometheus/metrics"
# On stop (SIGTERM, Ctrl-C) the calls already running get this long to finish; then both APIs close
# their connections, so a client stalled half-way through a request does not hold the shutdown.
SHUTDOWN_GRACE_S = 2.0


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file."""


def _declare_messages():
    """tensorflow_serving/servables/tensorflow/session_bundle_config.proto (BatchingParameters),
    tensorflow_serving/config/monitoring_config.proto (MonitoringConfig) and
    tensorflow_serving/config/ssl_config.proto (SSLConfig): tensorflow-serving-api ships none of them."""
    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/local/server_files.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )

    def add(message, fields):
        m = proto.message_type.add(name=message)
        for number, (name, kind, type_name, repeated) in enumerate(fields, start=1):
            m.field.add(
                name=name,
                number=number,
                type=kind,
                type_name=type_name or None,
                label=f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL,
            )

    int64_value = (f.TYPE_MESSAGE, ".google.protobuf.Int64Value", False)
    add(
        "BatchingParameters",
        [
            ("max_batch_size", *int64_value),
            ("batch_timeout_micros", *int64_value),
            ("thread_pool_name", f.TYPE_MESSAGE, ".google.protobuf.StringValue", False),
            ("num_batch_threads", *int64_value),
            ("max_enqueued_batches", *int64_value),
            ("allowed_batch_sizes", f.TYPE_INT64, "", True),
            ("pad_variable_length_inputs", f.TYPE_BOOL, "", False),
            ("enable_large_batch_splitting", f.TYPE_MESSAGE, ".google.protobuf.BoolValue", False),
            ("max_execution_batch_size", *int64_value),
        ],
    )
    add("PrometheusConfig", [("enable", f.TYPE_BOOL, "", False), ("path", f.TYPE_STRING, "", False)])
    add("MonitoringConfig", [("prometheus_config", f.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig", False)])
    add(
        "SSLConfig",
        [
            ("server_key", f.TYPE_STRING, "", False),
            ("server_cert", f.TYPE_STRING, "", False),
            ("custom_ca", f.TYPE_STRING, "", False),
            ("client_verify", f.TYPE_BOOL, "", False),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
    pool.Add(proto)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.SSLConfig")),
    )


BatchingParametersProto, MonitoringConfigProto, SSLConfigProto = _declare_messages()


def _parse_text(path: str, message, what: str):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from None
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ConfigError(f"{path}: not a valid {what} ({e})") from None


def read_model_server_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    config = _parse_text(path, model_server_config_pb2.ModelServerConfig(), "ModelServerConfig")
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{path}: only model_config_list is supported (custom_model_config is not)")
    check_model_config_list(config, path)
    return config


def check_model_config_list(config: model_server_config_pb2.ModelServerConfig, where: str) -> None:
    names = set()
    for model in config.model_config_list.config:
        if not model.name:
            raise ConfigError(f"{where}: a model config has no name")
        if not model.base_path:
            raise ConfigError(f"{where}: model {model.name!r} has no base_path")
        if model.name in names:
            raise ConfigError(f"{where}: model {model.name!r} is configured twice")
        if model.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{where}: model {model.name!r}: platform {model.model_platform!r} is not served here")
        if "/" in model.name or ":" in model.name:
            # TF Serving takes such a name too, and its REST paths cannot name it either.
            log.warning(
                "%s: model %r has '/' or ':' in its name: gRPC can reach it, REST (/v1/models/<name>) cannot",
                where,
                model.name,
            )
        names.add(model.name)


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    model.model_version_policy.latest.num_versions = 1
    check_model_config_list(config, "--model_name")
    return config


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's defaults (batching_session.h / session_bundle_config.proto)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = 4
    max_enqueued_batches: int = 10
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self) -> None:
        if self.max_batch_size <= 0 or self.num_batch_threads <= 0 or self.max_enqueued_batches <= 0:
            raise ConfigError("max_batch_size, num_batch_threads and max_enqueued_batches must be positive")
        if self.batch_timeout_micros < 0:
            raise ConfigError("batch_timeout_micros must not be negative")
        sizes = list(self.allowed_batch_sizes)
        if sizes:
            if sizes != sorted(set(sizes)) or sizes[0] <= 0:
                raise ConfigError(f"allowed_batch_sizes must be positive and increasing, got {sizes}")
            if sizes[-1] != self.max_batch_size:
                raise ConfigError(
                    f"the last allowed_batch_sizes entry ({sizes[-1]}) must equal max_batch_size ({self.max_batch_size})"
                )


def read_batching_parameters(path: str | None) -> BatchingParameters:
    if not path:
        return BatchingParameters()
    proto = _parse_text(path, BatchingParametersProto(), "BatchingParameters")
    values = {}
    for name in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"):
        if proto.HasField(name):
            values[name] = getattr(proto, name).value
    if proto.HasField("enable_large_batch_splitting") and proto.enable_large_batch_splitting.value:
        log.warning("%s: enable_large_batch_splitting is ignored; larger requests are refused", path)
    try:
        return BatchingParameters(
            **values,
            allowed_batch_sizes=tuple(proto.allowed_batch_sizes),
            pad_variable_length_inputs=proto.pad_variable_length_inputs,
        )
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def read_monitoring_path(path: str | None) -> str | None:
    """The Prometheus path the monitoring config enables, or None."""
    if not path:
        return None
    proto = _parse_text(path, MonitoringConfigProto(), "MonitoringConfig")
    if not proto.prometheus_config.enable:
        return None
    return proto.prometheus_config.path or DEFAULT_MONITORING_PATH


@dataclasses.dataclass(frozen=True)
class SslConfig:
    """--ssl_config_file: PEM text of the server's key and certificate, the CA that client certificates
    must chain to, and whether a client must present one."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False


def read_ssl_config(path: str | None) -> SslConfig | None:
    if not path:
        return None
    proto = _parse_text(path, SSLConfigProto(), "SSLConfig")
    if not proto.server_key or not proto.server_cert:
        raise ConfigError(f"{path}: SSLConfig needs server_key and server_cert (PEM text)")
    if proto.client_verify and not proto.custom_ca:
        raise ConfigError(f"{path}: client_verify needs custom_ca, the CA client certificates are checked against")
    return SslConfig(proto.server_key, proto.server_cert, proto.custom_ca, proto.client_verify)


# --- the server's options, checked before anything heavy is imported ------------------------------
EVENT_LOOPS = ("auto", "uvloop", "asyncio")


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8500
    rest_api_port: int = 8501
    model_name: str = "default"
    model_base_path: str | None = None
    model_config_file: str | None = None
    file_system_poll_wait_seconds: float = 1.0
    model_config_file_poll_wait_seconds: float = 0.0
    batching: BatchingParameters | None = None  # None: batching off
    monitoring_path: str | None = None
    rest_api_timeout_in_ms: int = 30_000
    rest_api_num_threads: int = 64
    # A REST connection that sends no complete request head for this long (from its start, or from
    # its last answer) is closed: slow or silent connections cannot pile up and use every descriptor.
    rest_api_idle_timeout_s: float = 30.0
    rest_max_body_bytes_in_flight: int = 1 << 30  # REST request bodies held at once; past it 503 (BodyBudget)
    grpc_max_threads: int = 64
    max_request_bytes: int = 64 << 20
    grpc_channel_arguments: tuple = ()
    reuse_port: bool = False  # SO_REUSEPORT: replicas of this server share its ports (--replicas)
    max_in_flight: int = 0  # inference requests inside the server at once; 0: what batching can hold, or 4x the threads
    max_loop_lag_ms: float = 100.0  # refuse new requests while the event loop runs this far behind; 0: never
    max_queue_ms: float = 250.0  # at most this much work (at the measured answer rate) inside; 0: a fixed count
    ssl: SslConfig | None = None  # --ssl_config_file: TLS on both ports
    grpc_max_pending: int = 128  # gRPC calls waiting for the event loop before gRPC refuses some; 0: gRPC's default
    event_loop: str = "auto"  # uvloop, asyncio, or auto: uvloop where it is installed

    def __post_init__(self) -> None:
        if bool(self.model_base_path) == bool(self.model_config_file):
            raise ConfigError("give exactly one of --model_base_path (with --model_name) or --model_config_file")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be within 0..65535 (0: any free port), got {self.port}")
        if not -1 <= self.rest_api_port <= 65535:
            raise ConfigError(
                f"--rest_api_port must be within 0..65535 (0: any free port, -1: no REST), got {self.rest_api_port}"
            )
        for flag, value in (
            ("--rest_api_timeout_in_ms", self.rest_api_timeout_in_ms),
            ("--rest_api_num_threads", self.rest_api_num_threads),
            ("--grpc_max_threads", self.grpc_max_threads),
            ("--max_request_bytes", self.max_request_bytes),
        ):
            if value < 1:
                raise ConfigError(f"{flag} must be at least 1, got {value}")
        if self.rest_max_body_bytes_in_flight < 1:
            raise ConfigError(
                f"--rest_max_body_bytes_in_flight must be at least 1, got {self.rest_max_body_bytes_in_flight}"
            )
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigError(f"--event_loop must be one of {', '.join(EVENT_LOOPS)}, got {self.event_loop!r}")
        if self.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ConfigError("--event_loop uvloop: uvloop is not installed")
