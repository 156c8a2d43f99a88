"""`python -m serving rollback MODEL --to VERSION` (or `--latest`): which version of a model the server
serves, changed through models.config.

The version policy becomes `specific { versions: VERSION }` (or `latest { num_versions: 1 }` again);
the file is replaced atomically (written aside, renamed), and a server polling it
(`--model_config_file_poll_wait_seconds`, 5 s under `make serve`) loads the chosen version before it
unloads the other, so no request fails. The Pusher keeps a pinned policy when it publishes a new
version (the pin holds until `--latest`) and never prunes a pinned version."""

from __future__ import annotations

import argparse
import os
import sys
import uuid

from serving import layout


def read_config(path: str):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with open(path, encoding="utf-8") as f:
        return text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())


def write_config(path: str, config) -> None:
    from google.protobuf import text_format

    staging = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with open(staging, "w", encoding="utf-8") as f:
        f.write(text_format.MessageToString(config))
    os.replace(staging, path)


def set_version(serving_dir: str, model: str, version: int | None) -> str:
    """Serve `version` of `model` (None: the latest again); returns what changed, in words."""
    path = os.path.join(serving_dir, layout.MODELS_CONFIG)
    if not os.path.exists(path):
        raise ValueError(f"no {path}: push a model first (make pipeline)")
    config = read_config(path)
    entry = next((m for m in config.model_config_list.config if m.name == model), None)
    if entry is None:
        known = ", ".join(m.name for m in config.model_config_list.config) or "none"
        raise ValueError(f"{path} has no model {model!r} (it has: {known})")
    available = layout.local_versions(entry.base_path)
    policy = entry.model_version_policy
    if version is None:
        policy.Clear()
        policy.latest.num_versions = 1
        what = f"{model}: the latest version ({max(available) if available else 'none yet'}) is served"
    else:
        if version not in available:
            raise ValueError(f"{model} has no version {version} in {entry.base_path} (it has: {available or 'none'})")
        policy.Clear()
        policy.specific.versions.append(version)
        what = f"{model}: version {version} is served (pinned; `--latest` to follow new pushes again)"
    write_config(path, config)
    return what


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving rollback", description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--to", type=int, metavar="VERSION", help="serve this version")
    which.add_argument("--latest", action="store_true", help="serve the newest version again")
    p.add_argument("--serving-dir", default="serving_models")
    args = p.parse_args(argv)
    try:
        print(set_version(args.serving_dir, args.model, None if args.latest else args.to))
    except ValueError as e:
        print(f"rollback: {e}", file=sys.stderr)
        return 2
    return 0
