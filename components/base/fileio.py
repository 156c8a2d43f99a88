"""One filesystem layer for artifact URIs, understood by TensorFlow and by Beam.

Every read, write, listing, rename and delete of an artifact goes through
these functions, which are `tf.io.gfile`'s: local paths, `gs://`, `hdfs://`
and any filesystem TensorFlow has a plugin for. TensorFlow's own readers and
writers (TFRecord, SavedModel, tf.Transform) use the same layer, and Beam's
`FileSystems` reaches it too: `GfileBeamFileSystem` below serves, through
tf.io.gfile, every scheme TensorFlow knows and Beam does not (Beam brings
its own local, GCS, S3 and HDFS filesystems). So `--output-dir` can name a
shared mount or an object store and every component reads and writes there.

Paths that are not artifacts (a temporary directory, a lock file beside a
SQLite store) may use the standard library.
"""

from __future__ import annotations

import posixpath
from typing import IO, Iterator

import tensorflow as tf
from apache_beam.io.filesystem import BeamIOError, CompressionTypes, FileMetadata, FileSystem, MatchResult

from components.base.uris import is_local

gfile = tf.io.gfile

makedirs = gfile.makedirs
listdir = gfile.listdir
glob = gfile.glob
rmtree = gfile.rmtree
remove = gfile.remove


def join(base: str, *parts: str) -> str:
    """`os.path.join` for URIs too (`gs://bucket` + `a` -> `gs://bucket/a`)."""
    if "://" in base:
        return posixpath.join(base, *parts)
    import os

    return os.path.join(base, *parts)


def exists(uri: str) -> bool:
    """Whether a file or directory is there. Off the local disk, by the parent's listing: some
    filesystems (TensorFlow's ram://) answer a bare prefix ("runs/1" for "runs/1.staging")."""
    if is_local(uri):
        return gfile.exists(uri)
    parent, name = posixpath.split(uri.rstrip("/"))
    if "://" not in parent or parent.endswith(":/"):
        return gfile.exists(uri)
    try:
        return name in {n.rstrip("/") for n in gfile.listdir(parent)}
    except tf.errors.NotFoundError:
        return False


def isdir(uri: str) -> bool:
    return exists(uri) and gfile.isdir(uri)


def open(uri: str, mode: str = "r", encoding: str | None = None) -> IO:  # noqa: A001 - the layer's `open`
    """A file object on any filesystem; text modes decode as UTF-8 (GFile has no encoding argument)."""
    del encoding  # GFile reads and writes UTF-8 in text mode
    return gfile.GFile(uri, mode)


def read_text(uri: str) -> str:
    with gfile.GFile(uri, "r") as f:
        return f.read()


def write_text(uri: str, text: str) -> None:
    with gfile.GFile(uri, "w") as f:
        f.write(text)


def read_bytes(uri: str) -> bytes:
    with gfile.GFile(uri, "rb") as f:
        return f.read()


def rename(src: str, dst: str, overwrite: bool = False) -> None:
    """A file or a whole directory. Object stores (and TF's ram://) have no directory rename:
    there a directory is copied, then deleted, which is not atomic."""
    if is_local(src) or not isdir(src):
        gfile.rename(src, dst, overwrite=overwrite)
        return
    if exists(dst):
        if not overwrite:
            raise FileExistsError(dst)
        gfile.rmtree(dst)
    copytree(src, dst)
    gfile.rmtree(src)


def rename_no_replace(src: str, dst: str) -> None:
    """Rename a directory into place, refusing an existing target (FileExistsError).

    Locally this is rename(2), which refuses a non-empty target atomically; elsewhere
    gfile checks first (object stores have no atomic directory rename)."""
    import errno
    import os

    if is_local(src) and is_local(dst):
        os.rename(src, dst)
        return
    if exists(dst):
        raise FileExistsError(errno.EEXIST, "exists", dst)
    rename(src, dst)


def copytree(src: str, dst: str) -> None:
    for directory, _subdirs, files in gfile.walk(src):
        relative = directory[len(src.rstrip("/")) :].lstrip("/")
        target = join(dst, relative) if relative else dst
        gfile.makedirs(target)
        for name in files:
            gfile.copy(join(directory, name), join(target, name), overwrite=True)


def walk_files(root: str) -> Iterator[str]:
    for directory, _subdirs, files in gfile.walk(root):
        for name in files:
            yield join(directory, name)


def size(uri: str) -> int:
    return gfile.stat(uri).length


# --- Beam ------------------------------------------------------------------------------------------------


class _CountingWriter:
    """A GFile writer whose tell() works on every filesystem (Beam's sinks ask; some TF filesystems cannot say)."""

    mode = "wb"  # CompressedFile checks it

    def __init__(self, raw) -> None:
        self._raw = raw
        self._written = 0

    def write(self, data) -> int:
        self._raw.write(data)
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GfileBeamFileSystem(FileSystem):
    """Beam's `FileSystems` for a scheme only TensorFlow knows: TensorFlow's in-memory `ram://` here;
    a subclass with another SCHEME serves a TF filesystem plugin's. Registered by being imported
    (components.base imports this module, on the driver and on every Beam worker)."""

    SCHEME = "ram"

    @classmethod
    def scheme(cls) -> str:
        return cls.SCHEME

    def join(self, basepath: str, *paths: str) -> str:
        return posixpath.join(basepath, *paths)

    def split(self, path: str) -> tuple[str, str]:
        head, tail = posixpath.split(path)
        return head, tail

    def has_dirs(self) -> bool:
        return True

    def mkdirs(self, path: str) -> None:
        gfile.makedirs(path)

    def _list(self, dir_or_prefix: str):
        for path in walk_files(dir_or_prefix):
            yield FileMetadata(path, size(path))

    def match(self, patterns, limits=None):
        results = []
        for pattern, limit in zip(patterns, limits or [None] * len(patterns)):
            paths = gfile.glob(pattern)[:limit] if limit else gfile.glob(pattern)
            results.append(MatchResult(pattern, [FileMetadata(p, size(p)) for p in paths if not gfile.isdir(p)]))
        return results

    @staticmethod
    def _wrap(raw, path: str, compression_type: str):
        if compression_type == CompressionTypes.AUTO:
            compression_type = CompressionTypes.detect_compression_type(path)
        if compression_type == CompressionTypes.UNCOMPRESSED:
            return raw
        from apache_beam.io.filesystem import CompressedFile

        return CompressedFile(raw, compression_type=compression_type)

    def create(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        gfile.makedirs(posixpath.dirname(path))
        return self._wrap(_CountingWriter(gfile.GFile(path, "wb")), path, compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        return self._wrap(gfile.GFile(path, "rb"), path, compression_type)

    def copy(self, source_file_names, destination_file_names):
        errors = {}
        for src, dst in zip(source_file_names, destination_file_names):
            try:
                if isdir(src):
                    copytree(src, dst)
                else:
                    gfile.copy(src, dst, overwrite=True)
            except Exception as error:  # noqa: BLE001 - Beam collects per-file errors
                errors[(src, dst)] = error
        if errors:
            raise BeamIOError("copy failed", errors)

    def rename(self, source_file_names, destination_file_names):
        errors = {}
        for src, dst in zip(source_file_names, destination_file_names):
            try:
                gfile.makedirs(posixpath.dirname(dst))
                gfile.rename(src, dst, overwrite=True)
            except Exception as error:  # noqa: BLE001 - Beam's FileSystem contract: collect per-file errors, raise one BeamIOError
                errors[(src, dst)] = error
        if errors:
            raise BeamIOError("rename failed", errors)

    def exists(self, path: str) -> bool:
        return exists(path)

    def size(self, path: str) -> int:
        return size(path)

    def last_updated(self, path: str) -> float:
        return gfile.stat(path).mtime_nsec / 1e9

    def checksum(self, path: str) -> str:
        stat = gfile.stat(path)
        return f"{stat.length}-{stat.mtime_nsec}"

    def metadata(self, path: str) -> FileMetadata:
        stat = gfile.stat(path)
        return FileMetadata(path, stat.length, stat.mtime_nsec / 1e9)

    def delete(self, paths):
        errors = {}
        for path in paths:
            try:
                if isdir(path):
                    gfile.rmtree(path)
                else:
                    gfile.remove(path)
            except Exception as error:  # noqa: BLE001 - Beam's FileSystem contract: collect per-file errors, raise one BeamIOError
                errors[path] = error
        if errors:
            raise BeamIOError("delete failed", errors)
