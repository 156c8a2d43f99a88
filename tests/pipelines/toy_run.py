"""Runs the runner tests' toy DAG in a process of its own, so tests can start several at one moment.

python -m tests.pipelines.toy_run --root DIR (--sqlite FILE | --metadata-config FILE) [--ready FILE --go FILE] [--count N]
Prints one JSON line: {component: [cached, execution id, [output artifact ids]]}.
"""

import argparse
import io
import json
import os
import time

from pipelines.metadata import MetadataStore, load_connection_config, sqlite_config
from pipelines.runner import LocalRunner
from tests.pipelines.test_runner import make_pipeline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--sqlite")
    parser.add_argument("--metadata-config")
    parser.add_argument("--ready", help="write this file once set up, then wait for --go to exist")
    parser.add_argument("--go")
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    config = load_connection_config(args.metadata_config) if args.metadata_config else sqlite_config(args.sqlite)
    store = MetadataStore(config)
    log = io.StringIO()
    runner = LocalRunner(store, args.root, out=log)
    if args.ready:  # a barrier: every process set up (TF and Beam imported) before any of them runs
        open(args.ready, "w").close()
        give_up = time.monotonic() + 300
        while not os.path.exists(args.go):
            if time.monotonic() > give_up:
                raise SystemExit(f"{args.go} did not appear within 300 s")
            time.sleep(0.01)
    result = runner.run(make_pipeline(count=args.count))
    print(
        json.dumps(
            {
                "log": log.getvalue(),
                "components": {
                    cid: [r.cached, r.execution_id, [a.id for arts in r.outputs.values() for a in arts]]
                    for cid, r in result.components.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
