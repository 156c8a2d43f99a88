"""Publishing SavedModels into a TF Serving model base path, atomically, and models.config."""
from __future__ import annotations

import errno
import os
import shutil
import uuid

from google.protobuf import text_format

MODELS_CONFIG = "models.config"


class VersionExists(RuntimeError):
    pass


def versions(base_path: str) -> list[int]:
    if not os.path.isdir(base_path):
        return []
    return sorted(int(name) for name in os.listdir(base_path) if name.isdigit())


def publish(saved_model_dir: str, base_path: str, extra_files: dict[str, str] | None = None) -> int:
    """Copy a SavedModel to `<base_path>/<next version>/`; return the version.

    The copy is made in a hidden sibling directory and renamed into place: the
    version directory appears complete or not at all. Rename refuses to replace
    a non-empty directory, so an existing version is never overwritten.
    """
    os.makedirs(base_path, exist_ok=True)
    version = (versions(base_path) or [0])[-1] + 1
    staging = os.path.join(base_path, f".staging-{version}-{uuid.uuid4().hex[:8]}")
    try:
        shutil.copytree(saved_model_dir, staging)
        for relative, source in (extra_files or {}).items():
            extra = os.path.join(staging, relative)
            os.makedirs(os.path.dirname(extra), exist_ok=True)
            shutil.copyfile(source, extra)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    target = os.path.join(base_path, str(version))
    try:
        if os.path.exists(target):
            raise FileExistsError(errno.EEXIST, "exists", target)
        os.rename(staging, target)  # refuses a non-empty target: a version that appeared meanwhile
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise VersionExists(f"version {version} appeared in {base_path} while publishing; nothing overwritten") from None
        raise
    return version


def _fingerprint(saved_model_dir: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    for root, dirs, files in os.walk(saved_model_dir):
        dirs[:] = sorted(d for d in dirs if d != "assets.extra")
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, saved_model_dir).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
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


def prune(base_path: str, keep: int) -> list[int]:
    """Remove all but the newest `keep` versions (renamed away first, then deleted)."""
    removed = []
    for version in versions(base_path)[:-keep] if keep > 0 else []:
        doomed = os.path.join(base_path, f".deleting-{version}-{uuid.uuid4().hex[:8]}")
        os.rename(os.path.join(base_path, str(version)), doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(version)
    return removed


def write_models_config(serving_dir: str) -> str:
    """models.config listing every model with at least one version, in ModelServerConfig text format."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name in sorted(os.listdir(serving_dir)):
        base_path = os.path.join(serving_dir, name)
        if name.startswith(".") or not os.path.isdir(base_path) or not versions(base_path):
            continue
        model = config.model_config_list.config.add()
        model.name = name
        model.base_path = os.path.abspath(base_path)
        model.model_platform = "tensorflow"
        model.model_version_policy.latest.num_versions = 1
    path = os.path.join(serving_dir, MODELS_CONFIG)
    staging = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with open(staging, "w") as f:
        f.write(text_format.MessageToString(config))
    os.replace(staging, path)
    return path
