"""What a URI's text alone says, in plain Python: code that only needs this (the cache key's data
fingerprint) does not import TensorFlow with components/base/fileio.py, which re-exports it."""

from __future__ import annotations


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")
