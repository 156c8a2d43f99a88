"""Runs the runner tests' toy DAG in a process of its own, so tests can start several at one moment.

python -m tests.pipelines.toy_run --root DIR (--sqlite FILE | --metadata-config FILE) [--start-at EPOCH] [--count N]
Prints one JSON line: {component: [cached, execution id, [output artifact ids]]}.
"""

import argparse
import io
import json
import time

from pipelines.metadata import MetadataStore, load_connection_config, sqlite_config
from pipelines.runner import LocalRunner
from tests.pipelines.test_runner import make_pipeline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--sqlite")
    parser.add_argument("--metadata-config")
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    config = load_connection_config(args.metadata_config) if args.metadata_config else sqlite_config(args.sqlite)
    store = MetadataStore(config)
    log = io.StringIO()
    runner = LocalRunner(store, args.root, out=log)
    time.sleep(max(0.0, args.start_at - time.time()))
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
