"""docs/extending.md works as written: its `# file:` code blocks, copied into a fresh folder,
make a component, a model and a pipeline that the runner runs end to end to a pushed model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

GUIDE = os.path.join(ROOT, "docs", "extending.md")
BLOCK = re.compile(r"```python\n# file: (?P<path>\S+)\n(?P<code>.*?)```", re.S)


def guide_files() -> dict[str, str]:
    with open(GUIDE) as f:
        return {m["path"]: m["code"] for m in BLOCK.finditer(f.read())}


def test_the_guide_has_a_component_a_model_a_pipeline_and_a_run():
    files = guide_files()
    assert set(files) == {"toy_ext/row_counter.py", "toy_ext/model.py", "toy_ext/pipeline.py", "run_toy.py"}
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert "docs/architecture.md" in readme and "docs/extending.md" in readme
    assert not re.search(r"\.\./shared/\w+\.md", readme)  # documents inside the clone, not beside it


@pytest.mark.slow  # a whole pipeline to a pushed model
def test_the_guides_code_runs_a_pipeline_to_a_pushed_model(tmp_path):
    for path, code in guide_files().items():
        target = tmp_path / "code" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code)
    (tmp_path / "code" / "toy_ext" / "__init__.py").write_text("")
    rng = np.random.default_rng(0)
    area = rng.uniform(500, 4000, 60)
    price = 150 * area + 20_000 + rng.normal(0, 10_000, 60)
    csv = tmp_path / "houses.csv"
    csv.write_text(
        "area,bedrooms,price\n" + "".join(f"{a:.1f},{int(rng.integers(1, 6))},{p:.1f}\n" for a, p in zip(area, price))
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path / 'code'}{os.pathsep}{ROOT}",
        "TOY_CSV": str(csv),
        "TOY_OUT": str(tmp_path / "out"),
    }
    done = subprocess.run(
        [sys.executable, str(tmp_path / "code" / "run_toy.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["total"] == 60 and summary["pushed"] == 1
    assert os.path.isfile(os.path.join(summary["version_dir"], "saved_model.pb"))
