"""The captcha pipeline end to end (--quick), and the SavedModel it publishes, called as a client would."""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image

from bench.robustness import inverted_png
from components.example_gen.captcha_source import CaptchaRenderer
from components.infra_validator.requests import read_warmup_requests
from tests.conftest import pipelines_cli

cli = pipelines_cli


@pytest.fixture(scope="module")
def quick_run(captcha_quick_run):
    return captcha_quick_run


@pytest.fixture(scope="module")
def served(quick_run):
    path = os.path.join(quick_run["serving"], "captcha", "1")
    return tf.saved_model.load(path)


def png(text="1234", size=None, fmt="PNG"):
    data = CaptchaRenderer().render_text(text, random.Random(f"test:{text}"))  # the same bytes every call
    if size is None and fmt == "PNG":
        return data
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if size:
        image = image.resize(size)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_quick_run_reports_every_component_and_a_summary(quick_run):
    result = quick_run["result"]
    for number, name in enumerate(
        [
            "CaptchaExampleGen",
            "StatisticsGen",
            "SchemaGen",
            "ExampleValidator",
            "Transform",
            "Trainer",
            "Evaluator",
            "InfraValidator",
            "Pusher",
        ],
        start=1,
    ):
        assert f"[{number}/9] {name}:" in result.stderr
    assert "epoch 1/2" in result.stderr
    # The run's 18.5-minute budget reached the Trainer, which fits its own into what is left.
    assert re.search(
        r"training time budget: [\d.]+ min \(at most [\d.]+; the run has 1[0-8]\.\d min left", result.stderr
    )
    assert re.search(r"augmentation for the first [\d.]+ min of [\d.]+ \(augment_until 0.75\)", result.stderr)
    for line in ("statistics:", "curves:", "test split:", "evaluator:   blessed", "pushed:      version 1"):
        assert line in result.stdout
    # Progress and real problems only: the libraries' warnings are not the user's to fix.
    noise = [line for line in result.stderr.splitlines() if re.match(r"WARNING (absl|tensorflow|apache_beam)", line)]
    assert noise == []


def test_pushed_version_is_a_complete_savedmodel_with_warmup_and_models_config(quick_run):
    from tensorflow_serving.config import model_server_config_pb2

    serving = quick_run["serving"]
    assert sorted(os.listdir(os.path.join(serving, "captcha"))) == ["1"]
    version = os.path.join(serving, "captcha", "1")
    assert os.path.exists(os.path.join(version, "saved_model.pb"))
    warmup = read_warmup_requests(os.path.join(version, "assets.extra", "tf_serving_warmup_requests"))
    assert len(warmup) >= 1 and "image_bytes" in warmup[0].predict_log.request.inputs
    config = text_format.Parse(
        open(os.path.join(serving, "models.config")).read(), model_server_config_pb2.ModelServerConfig()
    )
    assert [c.name for c in config.model_config_list.config] == ["captcha"]


def test_training_record_history_curves_and_tensorboard(quick_run):
    trainer_root = os.path.join(quick_run["out"], "captcha", "Trainer")
    [execution] = [d for d in os.listdir(trainer_root) if d.isdigit()]
    model_dir = os.path.join(trainer_root, execution, "model")
    history = json.load(open(os.path.join(model_dir, "history.json")))
    for key in ("loss", "val_loss", "full_string_accuracy", "val_full_string_accuracy", "character_accuracy"):
        assert len(history[key]) == 2, key
    assert "accuracy" not in history  # no element-wise accuracy posing as a captcha metric
    assert os.path.getsize(os.path.join(model_dir, "curves.png")) > 1000
    events = [f for _, _, files in os.walk(os.path.join(model_dir, "logs")) for f in files if "tfevents" in f]
    assert events


def test_calibration_is_fitted_on_eval_and_applied_by_the_export(quick_run, served):
    trainer_root = os.path.join(quick_run["out"], "captcha", "Trainer")
    [execution] = [d for d in os.listdir(trainer_root) if d.isdigit()]
    fitted = json.load(open(os.path.join(trainer_root, execution, "model", "calibration.json")))
    assert 0.05 <= fitted["temperature"] <= 20 and fitted["eval_examples"] > 0
    # The temperature minimises the eval NLL (T = 1 is a candidate); ECE may move either way.
    assert fitted["eval_nll_after"] <= fitted["eval_nll_before"] + 1e-9
    assert 0 <= fitted["eval_ece_after"] <= 1
    outputs = served.signatures["serving_default"](image_bytes=tf.constant([png("1234"), png("5678")]))
    assert outputs["accepted"].dtype == tf.bool and outputs["accepted"].shape == (2,)
    expected = outputs["confidence"].numpy() >= fitted["reject_below"]
    assert outputs["accepted"].numpy().tolist() == expected.tolist()
    # The quick model reads at chance: no confidence on eval earns 99.5% right, so it accepts nothing.
    assert fitted["eval_accepted_share"] == 0.0 and not outputs["accepted"].numpy().any()
    assert fitted["accepted_precision_level"] == 0.95 and fitted["eval_accepted_precision_lower_bound"] is None


def test_evaluator_reports_calibration_confusions_and_a_reliability_diagram(quick_run):
    evaluator_root = os.path.join(quick_run["out"], "captcha", "Evaluator")
    # The first run's; a test that re-runs with another threshold adds an execution.
    execution = min((d for d in os.listdir(evaluator_root) if d.isdigit()), key=int)
    evaluation = os.path.join(evaluator_root, execution, "evaluation")
    report = json.load(open(os.path.join(evaluation, "metrics.json")))["candidate"]
    overall = report["overall"]
    assert 0 <= overall["expected_calibration_error"] <= 1 and overall["accepted_share"] == 0.0
    assert sum(b["count"] for b in report["calibration"]["bins"]) == overall["num_examples"]
    assert report["confusions"] and all(re.fullmatch(r"\d->\d", pair) for pair in report["confusions"])
    assert open(os.path.join(evaluation, "reliability.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_serving_default_reads_png_bytes(served):
    signature = served.signatures["serving_default"]
    outputs = signature(image_bytes=tf.constant([png("1234"), png("5678")]))
    texts = [t.decode() for t in outputs["text"].numpy()]
    assert len(texts) == 2 and all(len(t) == 4 and t.isdigit() for t in texts)
    assert outputs["probabilities"].shape == (2, 4, 10)
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(-1), 1.0, rtol=1e-4)
    confidence = outputs["confidence"].numpy()
    assert ((0 <= confidence) & (confidence <= 1)).all()


def test_jpeg_and_other_sizes_are_accepted(served):
    signature = served.signatures["serving_default"]
    batch = [png(fmt="JPEG"), png(size=(320, 120)), png(size=(100, 40), fmt="JPEG")]
    outputs = signature(image_bytes=tf.constant(batch))
    assert outputs["text"].shape == (3,)


def test_light_text_on_a_dark_page_reads_as_its_inverse(served):
    """The served graph inverts an image whose page is darker than its ink, whatever model it holds."""
    signature = served.signatures["serving_default"]
    originals = [png(text) for text in ("1234", "5678", "9012")]
    inverted = [inverted_png(data) for data in originals]
    plain, flipped = (signature(image_bytes=tf.constant(batch)) for batch in (originals, inverted))
    p, f = plain["probabilities"].numpy(), flipped["probabilities"].numpy()
    np.testing.assert_allclose(p, f, atol=0.02)
    # The same reading wherever the model is decisive: the quick run's model (2 epochs) may sit at
    # near-ties, where 0.02 of difference flips a character ("8588" against "5555" in one CI run).
    top_two = np.sort(p, axis=-1)[..., -2:]
    decisive = top_two[..., 1] - top_two[..., 0] > 0.05
    assert (p.argmax(-1) == f.argmax(-1))[decisive].all()
    texts = [t.decode() for t in plain["text"].numpy()]
    assert ["".join(str(d) for d in row) for row in p.argmax(-1)] == texts


def test_corrupt_bytes_give_a_clear_error(served):
    signature = served.signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="(?i)image"):
        signature(image_bytes=tf.constant([b"this is not an image"]))
    # The model still answers afterwards.
    assert signature(image_bytes=tf.constant([png()]))["text"].shape == (1,)


def test_tf_example_and_classify_signatures(quick_run, served):
    from tensorflow.core.protobuf import saved_model_pb2

    example = tf.train.Example()
    example.features.feature["image"].bytes_list.value.append(png())
    serialized = tf.constant([example.SerializeToString()])
    text = served.signatures["serving_tf_example"](examples=serialized)["text"]
    direct = served.signatures["serving_default"](image_bytes=tf.constant([png()]))["text"]
    assert text.numpy().tolist() == direct.numpy().tolist()
    classified = served.signatures["classify"](inputs=serialized)
    assert classified["classes"].shape == (1, 1) and classified["scores"].shape == (1, 1)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(open(os.path.join(quick_run["serving"], "captcha", "1", "saved_model.pb"), "rb").read())
    assert proto.meta_graphs[0].signature_def["classify"].method_name == "tensorflow/serving/classify"


def copy_of(run: dict, tmp_path) -> dict:
    """The shared run's store and serving folder copied, for a test that runs more into them (other
    test files, on other workers, read the original at the same time)."""
    out, serving = str(tmp_path / "runs"), str(tmp_path / "serving")
    shutil.copytree(run["out"], out)
    shutil.copytree(run["serving"], serving)
    return {"out": out, "serving": serving}


def test_rerun_is_all_cache_hits_and_pushes_nothing_new(quick_run, tmp_path):
    run = copy_of(quick_run, tmp_path)

    def rerun():
        return cli("run", "captcha", "--quick", "--output-dir", run["out"], "--serving-dir", run["serving"])

    # The copy's serving folder is another folder: the Evaluator's baseline (the model published
    # there) is a parameter of its cache key, so it decides again, once.
    result = rerun()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Evaluator: running" in result.stderr and result.stderr.count("cache hit") == 7
    result = rerun()
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("cache hit") == 8  # every component but the Pusher, which always checks
    assert "already published as version 1" in result.stdout
    assert sorted(os.listdir(os.path.join(run["serving"], "captcha"))) == ["1"]


def test_evaluator_blocks_a_model_below_threshold_and_it_is_not_pushed(quick_run, tmp_path):
    run = copy_of(quick_run, tmp_path)
    result = cli(
        "run",
        "captcha",
        "--quick",
        "--param",
        "min_full_string_accuracy=0.95",
        "--output-dir",
        run["out"],
        "--serving-dir",
        run["serving"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Trainer: cache hit" in result.stderr  # only the decision is re-made
    assert "NOT blessed" in result.stdout
    [line] = [ln for ln in result.stdout.splitlines() if "NOT pushed" in ln]
    assert "full_string_accuracy" in line and "< required 0.95" in line
    assert sorted(os.listdir(os.path.join(run["serving"], "captcha"))) == ["1"]


def test_runs_lists_every_component_with_lineage(quick_run):
    result = cli("runs", "captcha", "--output-dir", quick_run["out"], "--last", "1")
    assert result.returncode == 0
    for name in ("Trainer", "Evaluator", "Pusher"):
        assert name in result.stdout
    assert "produced by execution" in result.stdout


def test_robustness_bench_scores_every_set_with_confusions(quick_run, tmp_path, monkeypatch, capsys):
    from bench import robustness

    monkeypatch.setenv("BENCH_OUT", str(tmp_path))
    monkeypatch.setattr("bench.common.OUT_DIR", str(tmp_path))
    model = os.path.join(quick_run["serving"], "captcha", "1")
    assert robustness.main(["--model", model, "--per-set", "24", "--sets", "library,heldout_fonts,wheezy"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\| library \| 24 \| [01]\.\d{4} \| [01]\.\d{4} \| 0\.0% \| ", out)
    assert "| heldout_fonts | 24 |" in out and "| wheezy | 24 |" in out and "goal (>= 0.99 on varied" in out
    [library, fonts, wheezy] = json.load(open(tmp_path / "robustness.json"))
    assert wheezy["set"] == "wheezy" and wheezy["overall"]["num_examples"] == 24
    assert library["set"] == "library" and library["overall"]["num_examples"] == 24
    assert sum(fonts["confusions"].values()) <= 24 * 4
    assert robustness.main(["--model", model, "--per-set", "8", "--sets", "heldout_geometry:overlap"]) == 0
    assert "| heldout_geometry:overlap | 8 |" in capsys.readouterr().out  # one departure of a preset alone
    style = 'upright={"preset": "library", "upright_share": 1}'
    assert robustness.main(["--model", model, "--per-set", "8", "--sets", "", "--style", style]) == 0
    assert "| upright | 8 |" in capsys.readouterr().out  # a rendering of one's own, by name
    assert robustness.main(["--model", model, "--per-set", "8", "--sets", "claptcha,flask_simple"]) == 0
    out = capsys.readouterr().out  # generators from PyPI, drawn by their own code
    assert "| claptcha | 8 |" in out and "| flask_simple | 8 |" in out and "the outside generators" in out
    with pytest.raises(SystemExit):
        robustness.main(["--model", model, "--sets", "comic_sans"])
    assert robustness.main(["--model", str(tmp_path / "nothing")]) == 1
    assert "run `make pipeline` first" in capsys.readouterr().err
