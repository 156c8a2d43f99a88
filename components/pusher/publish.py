"""Publishing SavedModels into a TF Serving model base path, atomically, and models.config."""

from __future__ import annotations

import errno
import os
import uuid

from google.protobuf import text_format

from components.base import fileio
from serving import layout


class VersionExists(RuntimeError):
    pass


def versions(base_path: str) -> list[int]:
    if not fileio.isdir(base_path):
        return []
    return layout.versions(fileio.listdir(base_path))


def publish(saved_model_dir: str, base_path: str, extra_files: dict[str, str] | None = None) -> int:
    """Copy a SavedModel to `<base_path>/<next version>/`; return the version.

    The copy is made in a hidden sibling directory and renamed into place: the
    version directory appears complete or not at all. Rename refuses to replace
    a non-empty directory, so an existing version is never overwritten.
    """
    fileio.makedirs(base_path)
    version = (versions(base_path) or [0])[-1] + 1
    staging = os.path.join(base_path, f".staging-{version}-{uuid.uuid4().hex[:8]}")
    try:
        fileio.copytree(saved_model_dir, staging)
        for relative, source in (extra_files or {}).items():
            extra = os.path.join(staging, relative)
            fileio.makedirs(os.path.dirname(extra))
            fileio.gfile.copy(source, extra, overwrite=True)
    except BaseException:
        _remove_quietly(staging)
        raise
    target = os.path.join(base_path, str(version))
    try:
        if fileio.exists(target):
            raise FileExistsError(errno.EEXIST, "exists", target)
        fileio.rename_no_replace(staging, target)  # refuses a version that appeared meanwhile
    except OSError as error:
        _remove_quietly(staging)
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise VersionExists(
                f"version {version} appeared in {base_path} while publishing; nothing overwritten"
            ) from None
        raise
    return version


def _fingerprint(saved_model_dir: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    root = saved_model_dir.rstrip("/")
    for path in sorted(fileio.walk_files(root)):
        relative = path[len(root) :].lstrip("/")
        if relative.startswith(os.path.dirname(layout.WARMUP_PATH) + "/"):
            continue
        digest.update(relative.encode())
        digest.update(fileio.read_bytes(path))
    return digest.hexdigest()


def published_version_of(saved_model_dir: str, base_path: str) -> int | None:
    """The version under `base_path` that holds this very SavedModel (warmup files aside), if any."""
    if not versions(base_path):
        return None
    wanted = _fingerprint(saved_model_dir)
    for version in reversed(versions(base_path)):
        if _fingerprint(os.path.join(base_path, str(version))) == wanted:
            return version
    return None


def prune(base_path: str, keep: int, pinned: list[int] | None = None) -> list[int]:
    """Remove all but the newest `keep` versions and the `pinned` ones (renamed away first, then deleted)."""
    removed = []
    for version in versions(base_path)[:-keep] if keep > 0 else []:
        if version in (pinned or []):
            continue
        doomed = os.path.join(base_path, f".deleting-{version}-{uuid.uuid4().hex[:8]}")
        fileio.rename(os.path.join(base_path, str(version)), doomed)
        _remove_quietly(doomed)
        removed.append(version)
    return removed


def write_models_config(serving_dir: str) -> str:
    """models.config listing every model with at least one version, in ModelServerConfig text format."""
    from tensorflow_serving.config import model_server_config_pb2

    path = os.path.join(serving_dir, layout.MODELS_CONFIG)
    previous = _read_policies(path)
    config = model_server_config_pb2.ModelServerConfig()
    for name in sorted(n.rstrip("/") for n in fileio.listdir(serving_dir)):
        base_path = os.path.join(serving_dir, name)
        if name.startswith(".") or not fileio.isdir(base_path) or not versions(base_path):
            continue
        model = config.model_config_list.config.add()
        model.name = name
        model.base_path = os.path.abspath(base_path) if fileio.is_local(base_path) else base_path
        model.model_platform = "tensorflow"
        if name in previous:  # a version pinned by `python -m serving rollback` stays pinned
            model.model_version_policy.CopyFrom(previous[name])
        else:
            model.model_version_policy.latest.num_versions = 1
    staging = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    fileio.write_text(staging, text_format.MessageToString(config))
    fileio.rename(staging, path, overwrite=True)
    return path


def _read_policies(path: str) -> dict:
    """{model: its version policy} of an existing models.config ({} when there is none or it is unreadable)."""
    from tensorflow_serving.config import model_server_config_pb2

    if not fileio.exists(path):
        return {}
    try:
        config = text_format.Parse(fileio.read_text(path), model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError:
        return {}
    return {
        m.name: m.model_version_policy for m in config.model_config_list.config if m.HasField("model_version_policy")
    }


def pinned_versions(serving_dir: str, model: str) -> list[int]:
    """The versions models.config pins for `model` (a `specific` policy), which pruning must keep."""
    policy = _read_policies(os.path.join(serving_dir, layout.MODELS_CONFIG)).get(model)
    return list(policy.specific.versions) if policy is not None and policy.HasField("specific") else []


def _remove_quietly(uri: str) -> None:
    try:
        fileio.rmtree(uri)
    except Exception:  # noqa: BLE001 - best effort: a leftover hidden folder is ignored by readers
        pass
