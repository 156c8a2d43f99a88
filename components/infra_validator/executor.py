from __future__ import annotations

import json
import os
import subprocess
import sys

from components.base import BaseExecutor, fileio
from components.infra_validator.component import (
    BLESSING_KEY,
    EXAMPLES_KEY,
    INPUT_MAPPING_KEY,
    MODEL_KEY,
    NUM_REQUESTS_KEY,
    SPLIT_KEY,
    TIMEOUT_SECONDS_KEY,
)
from components.infra_validator.requests import WARMUP_FILE, raw_requests, write_warmup_records
from components.trainer.fn_args import SERVING_DIR

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class InfraValidatorExecutor(BaseExecutor):
    """Loads the model in a separate process and sends it requests built from raw examples, as a server would.

    Inputs: `examples` (raw Examples; `num_requests` of `split` become requests), `model`. Output:
    `blessing` (report.json, property `blessed`, and the requests as TF Serving warmup records,
    which the Pusher ships in `assets.extra/`). Parameters: `input_mapping` (JSON: serving_default
    input -> raw feature), `num_requests`, `split`, `timeout_seconds`."""

    def Do(self, input_dict, output_dict, exec_properties):
        [examples] = input_dict[EXAMPLES_KEY]
        [model] = input_dict[MODEL_KEY]
        [blessing] = output_dict[BLESSING_KEY]
        requests = raw_requests(
            examples,
            exec_properties[SPLIT_KEY],
            json.loads(exec_properties[INPUT_MAPPING_KEY]),
            exec_properties[NUM_REQUESTS_KEY],
        )
        warmup_path = os.path.join(blessing.uri, WARMUP_FILE)
        write_warmup_records(requests, model.get("model_name", "model"), warmup_path)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
        try:
            probe = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "components.infra_validator.probe",
                    os.path.join(model.uri, SERVING_DIR),
                    warmup_path,
                ],
                capture_output=True,
                text=True,
                timeout=exec_properties[TIMEOUT_SECONDS_KEY],
                env=env,
            )
            lines = [line for line in probe.stdout.splitlines() if line.startswith("{")]
            report = json.loads(lines[-1]) if lines else {"ok": False, "error": probe.stderr.strip()[-500:]}
        except subprocess.TimeoutExpired:
            report = {"ok": False, "error": f"no answer within {exec_properties['timeout_seconds']}s"}
        with fileio.open(os.path.join(blessing.uri, "report.json"), "w") as f:
            json.dump(report, f, indent=2)
        blessing.set("blessed", int(bool(report.get("ok"))))
        reason = (
            f"loaded in a separate process in {report.get('load_seconds', 0):.1f}s and answered "
            f"{report.get('answered', 0)} requests"
            if report.get("ok")
            else f"failed to load or answer: {report.get('error', 'unknown error')}"
        )
        blessing.set("reason", reason)
