"""--replicas: server processes sharing the ports, supervised; --ssl_config_file: TLS with client
certificates on both ports, with a CA made in the test."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.model_server.process import wait_for
from tests.serving.toy_model import toy_server, write_toy_model


def _children(pid: int) -> set[int]:
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found |= {int(c) for c in f.read().split()}
    return found


def _predict(target: str, credentials=None, timeout: float = 10) -> float:
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "toy"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)
        return float(tf.make_ndarray(response.outputs["y"])[0])


@pytest.fixture
def replicated(tmp_path):
    base = str(tmp_path / "toy")
    write_toy_model(base, 1)
    server = toy_server(base, "--replicas", "2", log_path=str(tmp_path / "server.log"), poll=0.5)
    try:
        server.wait_ready(timeout=180)
        wait_for(lambda: len(_children(server.process.pid)) == 2, timeout=60)
        # Both replicas answer: each has loaded the model before the kernel sends it connections.
        wait_for(lambda: all(_answers(server) for _ in range(6)), timeout=120, interval=0.5)
        yield server, base
    finally:
        server.stop()


def _answers(server) -> bool:
    try:
        return requests.post(server.rest_url + "/v1/models/toy:predict", json={"instances": [2.0]}, timeout=5).ok
    except (requests.ConnectionError, requests.Timeout):  # still starting
        return False


def test_replicas_share_the_ports_pick_up_new_versions_and_are_restarted(replicated):
    server, base = replicated
    first = _children(server.process.pid)
    # A new version reaches every replica: fresh connections land on either, all answer with it.
    write_toy_model(base, 2)

    def everyone_serves_version_2():
        return all(_predict(server.grpc_target) == 3.0 for _ in range(8))  # 0.5 * 2 + offset 2

    wait_for(everyone_serves_version_2, timeout=60, interval=0.5)
    # A replica killed with SIGKILL: clients that retry lose nothing, the supervisor starts another.
    victim = sorted(first)[0]
    os.kill(victim, signal.SIGKILL)
    failures = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for _attempt in range(3):
            try:
                requests.post(
                    server.rest_url + "/v1/models/toy:predict", json={"instances": [2.0]}, timeout=5
                ).raise_for_status()
                break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            failures += 1
    assert failures == 0
    wait_for(
        lambda: len(_children(server.process.pid)) == 2 and victim not in _children(server.process.pid), timeout=60
    )
    assert "replica 0 (pid" in server.log() or "replica 1 (pid" in server.log()
    # SIGTERM to the supervisor stops every replica.
    replicas = _children(server.process.pid)
    server.process.terminate()
    assert server.process.wait(30) == 0
    for pid in replicas:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_without_replicas_a_taken_grpc_port_is_refused(tmp_path):
    base = str(tmp_path / "toy")
    write_toy_model(base, 1)
    first = toy_server(base, log_path=str(tmp_path / "a.log"))
    try:
        first.wait_ready()
        second = toy_server(
            base,
            grpc_port=first.grpc_port,
            log_path=str(tmp_path / "b.log"),
        )
        assert second.process.wait(120) != 0
        assert "cannot" in second.log()
        second.stop()
    finally:
        first.stop()


# --- TLS -----------------------------------------------------------------------------------------
def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool = False, server: bool = False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(obj) -> bytes:
    if hasattr(obj, "private_bytes"):
        return obj.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return obj.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made here; and a stranger's."""
    root = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, _name("test CA"), ca_key, ca=True)
    out = {"ca": _pem(ca)}
    for who, server in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        out[f"{who}_key"], out[f"{who}_cert"] = (
            _pem(key),
            _pem(_certificate(who, key, ca.subject, ca_key, server=server)),
        )
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    out["stranger_key"] = _pem(stranger_key)
    out["stranger_cert"] = _pem(_certificate("stranger", stranger_key, _name("stranger"), stranger_key))
    paths = {}
    for name, data in out.items():
        paths[name] = str(root / f"{name}.pem")
        with open(paths[name], "wb") as f:
            f.write(data)
    return out, paths


def _text_proto_string(pem: bytes) -> str:
    return '"' + pem.decode().replace("\n", "\\n") + '"'


@pytest.fixture(scope="module")
def tls_server(pki, tmp_path_factory):
    pem, _ = pki
    root = tmp_path_factory.mktemp("tls")
    write_toy_model(str(root / "toy"), 1)
    config = root / "ssl.config"
    config.write_text(
        f"server_key: {_text_proto_string(pem['server_key'])}\n"
        f"server_cert: {_text_proto_string(pem['server_cert'])}\n"
        f"custom_ca: {_text_proto_string(pem['ca'])}\nclient_verify: true\n"
    )
    server = toy_server(
        str(root / "toy"),
        "--ssl_config_file",
        str(config),
        log_path=str(root / "server.log"),
    )

    def listening():
        if server.process.poll() is not None:
            raise RuntimeError(server.log())
        try:
            for port in (server.grpc_port, server.rest_port):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    try:
        wait_for(listening, timeout=120, interval=0.3)
        yield server
    finally:
        server.stop()


def test_grpc_over_tls_needs_a_client_certificate_from_the_ca(tls_server, pki):
    pem, _ = pki
    trusted = grpc.ssl_channel_credentials(pem["ca"], pem["client_key"], pem["client_cert"])
    assert wait_for(lambda: _predict(tls_server.grpc_target, trusted) == 2.0, timeout=60, interval=0.5)
    for refused in (
        grpc.ssl_channel_credentials(pem["ca"]),  # no client certificate
        grpc.ssl_channel_credentials(pem["ca"], pem["stranger_key"], pem["stranger_cert"]),
        None,
    ):  # plaintext
        with pytest.raises(grpc.RpcError) as raised:
            _predict(tls_server.grpc_target, refused, timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_rest_over_tls_needs_a_client_certificate_from_the_ca(tls_server, pki):
    _, paths = pki
    url = f"https://127.0.0.1:{tls_server.rest_port}/v1/models/toy:predict"
    ok = requests.post(
        url, json={"instances": [2.0]}, verify=paths["ca"], cert=(paths["client_cert"], paths["client_key"]), timeout=10
    )
    assert ok.status_code == 200 and ok.json() == {"predictions": [2.0]}
    for cert in (None, (paths["stranger_cert"], paths["stranger_key"])):
        # Refused in the handshake (SSLError) or, with TLS 1.3, right after it (the connection is closed).
        with pytest.raises(requests.ConnectionError):
            requests.post(url, json={"instances": [2.0]}, verify=paths["ca"], cert=cert, timeout=10)
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"http://127.0.0.1:{tls_server.rest_port}/v1/models/toy:predict", json={"instances": [2.0]}, timeout=10
        )


def test_an_ssl_config_without_a_key_is_one_clear_line(tmp_path):
    config = tmp_path / "ssl.config"
    config.write_text('server_cert: "x"\n')
    write_toy_model(str(tmp_path / "toy"), 1)
    server = toy_server(
        str(tmp_path / "toy"),
        "--ssl_config_file",
        str(config),
        log_path=str(tmp_path / "server.log"),
    )
    assert server.process.wait(120) == 2
    assert "needs server_key and server_cert" in server.log()
    server.stop()
