"""User code named in parameters as `module.path:function` (run_fn, evaluate_fn, preprocessing_fn),
and the fingerprints of that code and of the data files parameters name, for the cache key."""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import os
import sysconfig
from typing import Any, Callable

from components.base.uris import is_local


def load_function(path: str) -> Callable[..., Any]:
    module_name, sep, name = path.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"expected 'module.path:function', got {path!r}")
    return getattr(importlib.import_module(module_name), name)


def _source_file(module_name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec else None
    return origin if origin and origin.endswith(".py") and os.path.exists(origin) else None


def _imported_modules(path: str, module_name: str) -> set[str]:
    """The modules a source file imports (absolute names; relative imports resolved)."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    package = module_name if os.path.basename(path) == "__init__.py" else module_name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {name for name in found if name}


def code_fingerprint(path: str) -> str:
    """A hash of the source of the module a `module.path:function` parameter names and of the
    first-party modules it imports (one level deep; installed packages are left out).

    It goes into the component's cache key, so editing a run_fn, a preprocessing_fn or the
    code they call is a cache miss instead of a silently reused model (TFX fingerprints
    its module files for the same reason)."""
    module_name = path.partition(":")[0]
    origin = _source_file(module_name)
    if origin is None:
        return ""
    installed = {os.path.realpath(sysconfig.get_paths()[key]) for key in ("purelib", "platlib", "stdlib")}
    files = {origin}
    for name in _imported_modules(origin, module_name):
        source = _source_file(name)
        if source and not any(os.path.realpath(source).startswith(root + os.sep) for root in installed):
            files.add(source)
    digest = hashlib.sha256()
    for file in sorted(files):
        with open(file, "rb") as f:
            digest.update(os.path.basename(file).encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


def data_fingerprint(path: str) -> str:
    """A hash of what `path` holds: a file's bytes, or a folder's files (names relative to it,
    and bytes), not where it lies. A data path parameter enters the cache key through it, so
    data edited in place is a cache miss, and the same data in another checkout, or on another
    machine sharing the metadata store, is a hit. Off the local disk (`gs://`, `hdfs://`, ...)
    reading it all would be a download: there it is the path with each file's name, size and
    modification time, as TFX fingerprints its inputs. A local path that does not exist, or
    cannot be read, hashes with its path and the reason: the executor then says what is wrong."""
    digest = hashlib.sha256()
    if not is_local(path):
        _hash_remote(digest, path)
        return digest.hexdigest()[:16]
    local = path.removeprefix("file://")
    try:
        if os.path.isfile(local):
            digest.update(b"file\0")
            _hash_file(digest, local)
        elif os.path.isdir(local):
            digest.update(b"folder\0")
            for root, dirs, files in os.walk(local):
                dirs.sort()
                for name in sorted(files):
                    file = os.path.join(root, name)
                    digest.update(os.path.relpath(file, local).replace(os.sep, "/").encode() + b"\0")
                    _hash_file(digest, file)
        else:
            digest.update(f"missing\0{path}".encode())
    except OSError as error:
        digest.update(f"unreadable\0{path}\0{error}".encode())
    return digest.hexdigest()[:16]


def _hash_file(digest: Any, path: str) -> None:
    with open(path, "rb") as f:
        digest.update(f"{os.fstat(f.fileno()).st_size}\0".encode())
        while chunk := f.read(1 << 20):
            digest.update(chunk)


def _hash_remote(digest: Any, path: str) -> None:
    from components.base import fileio  # TensorFlow's filesystems: gs://, hdfs://, ...

    digest.update(f"remote\0{path}\0".encode())
    try:
        for file in sorted(fileio.walk_files(path)) if fileio.isdir(path) else [path]:
            stat = fileio.gfile.stat(file)
            digest.update(f"{file[len(path) :]}\0{stat.length}\0{stat.mtime_nsec}\0".encode())
    except fileio.tf.errors.OpError as error:
        digest.update(f"unreadable\0{error.message}".encode())
