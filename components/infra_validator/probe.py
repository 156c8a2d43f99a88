"""Run in a separate process: load a SavedModel, replay warmup requests through their signature.

    python -m components.infra_validator.probe SAVED_MODEL_DIR WARMUP_FILE

Prints one JSON line: {"ok": bool, "answered": n, "error": "...", "load_seconds": s, "outputs": [...]}.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str]) -> int:
    saved_model_dir, warmup_file = argv
    report = {"ok": False, "answered": 0, "error": "", "load_seconds": 0.0, "outputs": []}
    try:
        import tensorflow as tf

        from components.infra_validator.requests import read_warmup_requests
        from serving.layout import DEFAULT_SIGNATURE

        started = time.monotonic()
        loaded = tf.saved_model.load(saved_model_dir)
        report["load_seconds"] = time.monotonic() - started
        for log in read_warmup_requests(warmup_file):
            request = log.predict_log.request
            signature = loaded.signatures[request.model_spec.signature_name or DEFAULT_SIGNATURE]
            inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
            outputs = signature(**inputs)
            report["outputs"].append({k: list(v.shape) for k, v in outputs.items()})
            report["answered"] += 1
        report["ok"] = report["answered"] > 0
    except Exception as error:  # noqa: BLE001 - the verdict is the report
        report["error"] = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:500]}"
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
