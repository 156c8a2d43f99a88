"""One client for the model server, over REST or gRPC, used by the frontend, tests and benchmarks.

It speaks only TF Serving's public API, so it works unchanged against the
official tensorflow_model_server. REST predict responses do not say which
version answered, so the REST client asks the status first and then
addresses that version explicitly (retrying once if it was just unloaded)."""

from __future__ import annotations

import base64
import dataclasses
import threading
import time

import numpy as np
import requests


class ModelServerError(Exception):
    """The server answered with an error; `code` is the gRPC status name (NOT_FOUND, INVALID_ARGUMENT, ...)."""

    def __init__(self, code: str, message: str, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


class ServerUnavailable(ModelServerError):
    """Nothing answered (not running, wrong address) or the server is overloaded."""

    def __init__(self, message: str) -> None:
        super().__init__("UNAVAILABLE", message, 503)


@dataclasses.dataclass(frozen=True)
class Prediction:
    outputs: dict[str, np.ndarray]
    model: str
    version: int | None
    transport: str
    seconds: float


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str
    error_code: str
    error_message: str


HTTP_TO_CODE = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _b64(value):
    if isinstance(value, (bytes, bytearray)):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.ndarray):
        return _b64(value.tolist())
    if isinstance(value, list):
        return [_b64(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value) -> np.ndarray:
    def unwrap(v):
        if isinstance(v, dict) and "b64" in v:
            return base64.b64decode(v["b64"])
        if isinstance(v, list):
            return [unwrap(x) for x in v]
        if isinstance(v, str):
            return v.encode("utf-8")
        return v

    converted = unwrap(value)
    array = np.array(converted, dtype=object if _has_bytes(converted) else None)
    return array


def _has_bytes(value) -> bool:
    if isinstance(value, list):
        return any(_has_bytes(v) for v in value)
    return isinstance(value, bytes)


class RestClient:
    transport = "rest"

    def __init__(self, base_url: str = "http://127.0.0.1:8501", timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()  # requests.Session is not thread-safe: one per thread
        self._output_names: dict[tuple, str] = {}

    @property
    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _url(self, model: str, version: int | None = None, label: str | None = None) -> str:
        url = f"{self.base_url}/v1/models/{model}"
        if version is not None:
            url += f"/versions/{version}"
        elif label:
            url += f"/labels/{label}"
        return url

    def _call(self, method: str, url: str, body: dict | None = None) -> dict:
        try:
            response = self._session.request(method, url, json=body, timeout=self.timeout)
        except requests.ConnectionError as e:
            raise ServerUnavailable(f"cannot reach the model server at {self.base_url}: {type(e).__name__}") from None
        except requests.Timeout:
            raise ModelServerError(
                "DEADLINE_EXCEEDED", f"no answer from {self.base_url} within {self.timeout}s", 504
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": response.text[:200]}
        if response.status_code != 200:
            code = HTTP_TO_CODE.get(response.status_code, "UNKNOWN")
            if response.status_code == 503:
                raise ServerUnavailable(payload.get("error", "unavailable"))
            raise ModelServerError(code, payload.get("error", response.reason), response.status_code)
        return payload

    # --- model service --------------------------------------------------------------------------
    def status(self, model: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        payload = self._call("GET", self._url(model, version, label))
        return [
            VersionStatus(
                int(s["version"]),
                s["state"],
                s.get("status", {}).get("error_code", "OK"),
                s.get("status", {}).get("error_message", ""),
            )
            for s in payload.get("model_version_status", [])
        ]

    def metadata(self, model: str, version: int | None = None) -> dict:
        return self._call("GET", self._url(model, version) + "/metadata")

    def _only_output(self, model: str, version: int | None, signature_name: str) -> str:
        key = (model, version, signature_name)
        if key not in self._output_names:
            signatures = self.metadata(model, version)["metadata"]["signature_def"]["signature_def"]
            outputs = list(signatures[signature_name or "serving_default"]["outputs"])
            self._output_names[key] = outputs[0] if len(outputs) == 1 else "outputs"
        return self._output_names[key]

    def latest_version(self, model: str) -> int:
        available = [s.version for s in self.status(model) if s.state == "AVAILABLE"]
        if not available:
            raise ModelServerError("NOT_FOUND", f"no version of model {model} is available", 404)
        return max(available)

    # --- prediction service ----------------------------------------------------------------------
    def predict(
        self, model: str, inputs: dict, signature_name: str = "", version: int | None = None, label: str | None = None
    ) -> Prediction:
        """Columnar request: `inputs` maps input names to batched values (bytes for DT_STRING)."""
        started = time.perf_counter()
        body = {"inputs": {k: _b64(v) for k, v in inputs.items()}}
        if signature_name:
            body["signature_name"] = signature_name
        explicit = version is not None or label is not None
        for attempt in range(2):
            served = version if explicit else self.latest_version(model)
            try:
                payload = self._call("POST", self._url(model, served, label if explicit else None) + ":predict", body)
                break
            except ModelServerError as e:
                if explicit or attempt or e.code != "NOT_FOUND":
                    raise  # NOT_FOUND once, unaddressed: the version was swapped out between status and predict
        outputs = payload["outputs"]
        if not isinstance(outputs, dict):  # TF Serving drops the name when a signature has one output
            outputs = {self._only_output(model, served, signature_name): outputs}
        return Prediction(
            {k: _from_json(v) for k, v in outputs.items()},
            model,
            served if served is not None else None,
            self.transport,
            time.perf_counter() - started,
        )

    def classify(self, model: str, examples: list[dict], signature_name: str = "", version: int | None = None) -> list:
        body = {"examples": [{k: _b64(v) for k, v in e.items()} for e in examples]}
        if signature_name:
            body["signature_name"] = signature_name
        return self._call("POST", self._url(model, version) + ":classify", body)["result"]

    def regress(
        self, model: str, examples: list[dict], signature_name: str = "", version: int | None = None
    ) -> list[float]:
        body = {"examples": [{k: _b64(v) for k, v in e.items()} for e in examples]}
        if signature_name:
            body["signature_name"] = signature_name
        return self._call("POST", self._url(model, version) + ":regress", body)["result"]

    def close(self) -> None:
        if hasattr(self._local, "session"):
            self._local.session.close()


def __getattr__(name: str):
    """`GrpcClient` is imported on first use: it needs TensorFlow and the TF Serving stubs, which a
    REST-only client (the frontend's container) does without."""
    if name == "GrpcClient":
        from serving.grpc_client import GrpcClient

        return GrpcClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_client(
    transport: str = "rest",
    rest_url: str = "http://127.0.0.1:8501",
    grpc_target: str = "127.0.0.1:8500",
    timeout: float = 30.0,
):
    if transport == "rest":
        return RestClient(rest_url, timeout)
    if transport == "grpc":
        from serving.grpc_client import GrpcClient

        return GrpcClient(grpc_target, timeout)
    raise ValueError(f"transport must be rest or grpc, got {transport!r}")


# --- captcha convenience: what the frontend and the benchmarks send --------------------------------
@dataclasses.dataclass(frozen=True)
class CaptchaReading:
    text: str
    confidence: float
    character_confidences: list[float]
    version: int | None
    transport: str
    seconds: float
    # The model's own verdict (confidence >= its reject_below); None for models exported without one.
    accepted: bool | None = None


def read_captcha(client, model: str, image: bytes) -> CaptchaReading:
    prediction = client.predict(model, {"image_bytes": [image]})
    text = prediction.outputs["text"][0]
    text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
    probabilities = np.asarray(prediction.outputs["probabilities"], dtype=float)[0]
    accepted = prediction.outputs.get("accepted")
    return CaptchaReading(
        text,
        float(np.asarray(prediction.outputs["confidence"], dtype=float)[0]),
        [float(p) for p in probabilities.max(axis=-1)],
        prediction.version,
        prediction.transport,
        prediction.seconds,
        None if accepted is None else bool(np.asarray(accepted).ravel()[0]),
    )


# --- digits: the MNIST model's serving_default -------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DigitReading:
    digit: int
    probabilities: list[float]  # of the digits 0-9
    version: int | None
    transport: str
    seconds: float


def read_digit(client, model: str, image: bytes) -> DigitReading:
    """One encoded image (any size, either polarity) through the MNIST model's serving_default."""
    prediction = client.predict(model, {"image_bytes": [image]})
    probabilities = np.asarray(prediction.outputs["probabilities"], dtype=float).reshape(-1, 10)[0]
    digit = int(np.asarray(prediction.outputs["class"]).ravel()[0])
    return DigitReading(
        digit, [float(p) for p in probabilities], prediction.version, prediction.transport, prediction.seconds
    )
