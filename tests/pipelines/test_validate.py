"""`pipelines validate`: real TFDV over Beam; exit 0 clean, 1 anomalies, 2 unusable input."""

from __future__ import annotations

import io
import json
import os

import pytest

from components.schema_gen.schema_io import SchemaError
from pipelines.house_price import SCHEMA_PATH as HOUSE_SCHEMA
from pipelines.validate import validate
from pipelines.validate_checks import UnusableInput
from tests.conftest import imported_modules, pipelines_cli

CITY_SCHEMA = """
feature {
  name: "city" type: BYTES domain: "city" presence { min_fraction: 1.0 }
  drift_comparator { infinity_norm { threshold: 0.2 } }
}
feature { name: "rooms" type: INT int_domain { min: 1 max: 10 } presence { min_fraction: 1.0 } }
string_domain { name: "city" value: "Paris" value: "Lyon" value: "Nice" }
"""


def csv_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def city_schema(tmp_path):
    return csv_file(tmp_path, "city_schema.pbtxt", CITY_SCHEMA)


def run_validate(tmp_path, data, schema, **kwargs):
    out = io.StringIO()
    code = validate(data, schema, report_dir=str(tmp_path / "report"), out=out, **kwargs)
    report = json.load(open(tmp_path / "report" / "anomalies.json"))["anomalies"]
    return code, {row["feature"]: row for row in report}, out.getvalue()


def test_the_books_data_is_clean(tmp_path, shared_data):
    code, anomalies, text = run_validate(tmp_path, os.path.join(shared_data, "house_price", "data1.csv"), HOUSE_SCHEMA)
    assert code == 0, text
    assert anomalies == {}
    assert "47 rows" in text
    for name in ("anomalies.json", "SchemaDiff.pbtxt", "statistics.html", "FeatureStats.pb"):
        assert (tmp_path / "report" / name).exists()


def test_serving_data_without_the_label_is_clean_in_the_serving_environment(tmp_path):
    data = csv_file(tmp_path, "serve.csv", "area,bedrooms\n2104,3\n1600,4\n")
    code, anomalies, text = run_validate(tmp_path, data, HOUSE_SCHEMA)
    assert code == 0 and "SERVING" in text


@pytest.mark.parametrize("header", ["area,bedrooms,price\n", ""])
def test_a_byte_order_mark_is_not_part_of_the_first_field(tmp_path, header):
    """Excel's "CSV UTF-8" starts the file with one: "\ufeffarea" was a new column (and area missing),
    or a first value "\ufeff2104" a string in a FLOAT column."""
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{header}2104,3,399900\n1600,3,329900\n".encode())
    code, anomalies, text = run_validate(tmp_path, str(path), HOUSE_SCHEMA)
    assert code == 0 and anomalies == {}, text
    assert "2 rows" in text


@pytest.mark.parametrize(
    "row, feature, description",
    [
        ("nan,3,300000", "area", "Float feature has NaN values"),
        ("2000,3,inf", "price", "Float feature has Inf values"),  # was exit 3: the HTML view could not print inf
        ("-inf,3,5", "area", "Float feature has Inf values"),
    ],
)
def test_nan_and_inf_are_anomalies_and_the_report_still_shows_them(tmp_path, row, feature, description):
    """The curated schema disallows them (float_domain disallow_nan / disallow_inf): before, a NaN area
    was "no anomalies" and trained a model on it, and an inf price crashed the report's HTML view."""
    data = csv_file(tmp_path, "odd.csv", f"area,bedrooms,price\n2104,3,399900\n1600,3,329900\n{row}\n")
    code, anomalies, text = run_validate(tmp_path, data, HOUSE_SCHEMA)
    assert code == 1 and set(anomalies) == {feature}, text
    assert description in anomalies[feature]["description"]
    assert description in (tmp_path / "report" / "statistics.html").read_text()


@pytest.mark.parametrize(
    "prices, fragment",
    [
        (
            ("inf", "-inf"),
            "Inf values",
        ),  # no finite value: TFDV's histogram runs from inf to -inf, and drawing it was exit 3
        (("", ""), "not present in any examples"),  # no value at all: a column of Arrow's null type was exit 4
    ],
)
def test_a_column_with_no_finite_value_or_none_at_all_is_an_anomaly(tmp_path, prices, fragment):
    data = csv_file(tmp_path, "odd.csv", "area,bedrooms,price\n" + "".join(f"2104,3,{p}\n" for p in prices))
    code, anomalies, text = run_validate(tmp_path, data, HOUSE_SCHEMA)
    assert code == 1 and set(anomalies) == {"price"}, text
    assert fragment in anomalies["price"]["description"]
    assert (tmp_path / "report" / "statistics.html").is_file()


def test_missing_column(tmp_path):
    data = csv_file(tmp_path, "m.csv", "area,price\n2104,399900\n1600,329900\n")
    code, anomalies, _ = run_validate(tmp_path, data, HOUSE_SCHEMA)
    assert code == 1
    assert "bedrooms" in anomalies
    assert (
        "missing" in anomalies["bedrooms"]["description"].lower()
        or "dropped" in anomalies["bedrooms"]["short_description"].lower()
    )


def test_string_in_an_integer_column(tmp_path):
    data = csv_file(tmp_path, "s.csv", "area,bedrooms,price\n2104,3,399900\n1600,three,329900\n")
    code, anomalies, text = run_validate(tmp_path, data, HOUSE_SCHEMA)
    assert code == 1
    assert "three" in anomalies["bedrooms"]["description"]
    assert "bedrooms" in text


def test_value_out_of_domain(tmp_path):
    data = csv_file(tmp_path, "d.csv", "area,bedrooms,price\n2104,3,399900\n1600,25,329900\n-5,2,100\n")
    code, anomalies, _ = run_validate(tmp_path, data, HOUSE_SCHEMA)
    assert code == 1
    assert set(anomalies) >= {"bedrooms", "area"}
    assert (
        "max" in anomalies["bedrooms"]["description"].lower()
        or "out-of-range" in anomalies["bedrooms"]["short_description"].lower()
    )


def test_unseen_categorical_value(tmp_path, city_schema):
    data = csv_file(tmp_path, "c.csv", "city,rooms\nParis,2\nLyon,3\nBerlin,4\n")
    code, anomalies, _ = run_validate(tmp_path, data, city_schema)
    assert code == 1
    assert "Berlin" in anomalies["city"]["description"]


def test_drift_beyond_threshold_against_baseline_statistics(tmp_path, city_schema):
    baseline = csv_file(tmp_path, "base.csv", "city,rooms\n" + "Paris,2\n" * 80 + "Lyon,3\n" * 20)
    code, _, _ = run_validate(tmp_path / "b", baseline, city_schema)
    assert code == 0
    baseline_stats = str(tmp_path / "b" / "report" / "FeatureStats.pb")
    similar = csv_file(tmp_path, "similar.csv", "city,rooms\n" + "Paris,2\n" * 78 + "Lyon,3\n" * 22)
    code, anomalies, _ = run_validate(tmp_path / "s", similar, city_schema, baseline_stats=baseline_stats)
    assert code == 0, anomalies
    drifted = csv_file(tmp_path, "drifted.csv", "city,rooms\n" + "Paris,2\n" * 20 + "Nice,3\n" * 80)
    code, anomalies, _ = run_validate(tmp_path / "d", drifted, city_schema, baseline_stats=baseline_stats)
    assert code == 1
    assert "city" in anomalies
    assert "linfty distance between current and previous is 0.8" in anomalies["city"]["description"].lower()
    # Drawn, not only listed: the report's page shows the measured distance against the threshold.
    from PIL import Image

    for run in ("s", "d"):
        chart = tmp_path / run / "report" / "drift.png"
        assert Image.open(chart).size[0] > 400
        assert "<section id='drift'>" in (tmp_path / run / "report" / "statistics.html").read_text()
    assert not (tmp_path / "b" / "report" / "drift.png").exists()  # no baseline, nothing compared
    page = (tmp_path / "d" / "report" / "statistics.html").read_text()
    assert "<h2 class='warn'>Anomalies</h2>" in page and "<tr class='anomaly'><td>city" in page


def test_the_drift_chart_shows_each_comparison_against_its_threshold(tmp_path):
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    from components.example_validator.drift_chart import comparisons, draw_drift

    measured = {}
    for split, value in (("eval", 0.05), ("test", 0.4)):
        anomalies = anomalies_pb2.Anomalies()
        info = anomalies.drift_skew_info.add()
        info.path.step.append("label")
        info.drift_measurements.add(type=anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY, value=value, threshold=0.1)
        measured[split] = anomalies
    found = comparisons(measured)
    assert [(c.split, c.over, c.measure) for c in found] == [
        ("eval", False, "L-infinity distance"),
        ("test", True, "L-infinity distance"),
    ]
    assert draw_drift(measured, str(tmp_path / "drift.png"), "train")
    assert (tmp_path / "drift.png").read_bytes()[:4] == b"\x89PNG"
    assert not draw_drift({"eval": anomalies_pb2.Anomalies()}, str(tmp_path / "none.png"))
    assert not (tmp_path / "none.png").exists()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", b"", "empty"),
        ("short.csv", b"area,bedrooms,price\n2104,3,399900\n1600,3\n", "line 3 has 2 fields, expected 3"),
        ("latin1.csv", b"area,bedrooms,price\n2104,3,399900\n1600,3,32\xe99\n", "line 3 is not UTF-8"),
        ("header_only.csv", b"area,bedrooms,price\n", "no data rows"),
        ("twice.csv", b"area,area,price\n1,2,3\n", "the header names area more than once"),  # was exit 4
        (
            "semicolons.csv",
            b"area;bedrooms;price\n2104;3;399900\n",
            "line 1 has 1 fields, expected 3 .* look separated by semicolons: this reads comma-separated values",
        ),
    ],
)
def test_unusable_csv_is_refused_with_one_clear_message(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnusableInput, match=message):
        validate(str(path), HOUSE_SCHEMA, report_dir=str(tmp_path / "report"), out=io.StringIO())


def test_an_unknown_environment_or_a_report_folder_that_cannot_be_made_is_unusable(tmp_path):
    """Both were exit 3, "internal error"; the report folder after the statistics had been computed."""
    data = csv_file(tmp_path, "ok.csv", "area,bedrooms,price\n1,1,1\n")
    with pytest.raises(UnusableInput, match=r"environment 'NOPE' is not one of the schema's \(TRAINING, SERVING\)"):
        validate(data, HOUSE_SCHEMA, report_dir=str(tmp_path / "r"), environment="NOPE", out=io.StringIO())
    with pytest.raises(UnusableInput, match="report folder .*ok.csv: .*ok.csv is a file, not a folder"):
        validate(data, HOUSE_SCHEMA, report_dir=data, out=io.StringIO())
    with pytest.raises(UnusableInput, match="report folder .*ok.csv/sub: .*ok.csv is a file, not a folder"):
        validate(data, HOUSE_SCHEMA, report_dir=data + "/sub", out=io.StringIO())
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UnusableInput, match="report folder .*locked/r: .*locked is not writable"):
            validate(data, HOUSE_SCHEMA, report_dir=str(locked / "r"), out=io.StringIO())


def test_missing_file_and_bad_schema_are_unusable(tmp_path):
    with pytest.raises(UnusableInput, match="no such file"):
        validate(str(tmp_path / "nope.csv"), HOUSE_SCHEMA, out=io.StringIO())
    data = csv_file(tmp_path, "ok.csv", "area,bedrooms,price\n1,1,1\n")
    broken = csv_file(tmp_path, "broken.pbtxt", "feature { name: ")
    with pytest.raises(SchemaError, match="does not parse"):
        validate(data, broken, out=io.StringIO())


def test_tfrecord_input(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "data.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for area, bedrooms, price in [(2104.0, 3, 399900.0), (1600.0, 30, 329900.0)]:
            example = tf.train.Example()
            example.features.feature["area"].float_list.value.append(area)
            example.features.feature["bedrooms"].int64_list.value.append(bedrooms)
            example.features.feature["price"].float_list.value.append(price)
            writer.write(example.SerializeToString())
    code, anomalies, _ = run_validate(tmp_path, path, HOUSE_SCHEMA)
    assert code == 1 and set(anomalies) == {"bedrooms"}


def test_a_corrupt_or_foreign_tfrecord_is_unusable_input_with_the_record(tmp_path):
    """Before: a Beam job that failed half-way, exit 4 ("engine failure") for a bad file."""
    import tensorflow as tf

    good = tf.train.Example()
    good.features.feature["area"].float_list.value.append(2104.0)
    path = str(tmp_path / "data.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(good.SerializeToString())
        writer.write(good.SerializeToString())
    intact = open(path, "rb").read()
    corrupt = tmp_path / "corrupt.tfrecord"
    corrupt.write_bytes(intact[:-6] + b"\0" * 6)  # the second record's data checksum
    with pytest.raises(UnusableInput, match="corrupt.tfrecord: record 2 cannot be read: .*corrupted record"):
        validate(str(corrupt), HOUSE_SCHEMA, report_dir=str(tmp_path / "r1"), out=io.StringIO())
    foreign = str(tmp_path / "foreign.tfrecord")
    with tf.io.TFRecordWriter(foreign) as writer:
        writer.write(good.SerializeToString())
        writer.write(b"\xff\xff\xff not a protocol buffer")
    with pytest.raises(UnusableInput, match="foreign.tfrecord: record 2 is not a tf.Example"):
        validate(foreign, HOUSE_SCHEMA, report_dir=str(tmp_path / "r2"), out=io.StringIO())
    mixed = str(tmp_path / "mixed.tfrecord")  # area as integers in the third record: was exit 4, "incompatible type"
    integers = tf.train.Example()
    integers.features.feature["area"].int64_list.value.append(2104)
    with tf.io.TFRecordWriter(mixed) as writer:
        for example in (good, tf.train.Example(), integers):
            writer.write(example.SerializeToString())
    with pytest.raises(UnusableInput, match="record 3 has feature 'area' as int64_list, record 1 as float_list"):
        validate(mixed, HOUSE_SCHEMA, report_dir=str(tmp_path / "r4"), out=io.StringIO())
    result = cli_validate("--data", str(corrupt), "--schema", HOUSE_SCHEMA, "--report", str(tmp_path / "r3"))
    assert result.returncode == 2 and "record 2 cannot be read" in result.stderr


def cli_validate(*args):
    return pipelines_cli("validate", *args, timeout=300)


def test_cli_exit_codes_clean_anomalous_unusable(tmp_path):
    clean = csv_file(tmp_path, "clean.csv", "area,bedrooms,price\n2104,3,399900\n1600,3,329900\n")
    bad = csv_file(tmp_path, "bad.csv", "area,bedrooms,price\n2104,99,399900\n1600,3,inf\n")
    short = csv_file(tmp_path, "short.csv", "area,bedrooms,price\n2104,3\n")
    ok = cli_validate("--data", clean, "--schema", HOUSE_SCHEMA, "--report", str(tmp_path / "r1"))
    assert ok.returncode == 0, ok.stderr
    # Quiet: no TensorFlow C++ log lines (oneDNN, CUDA stubs) and no Google client notices; they
    # came back once when an import ahead of the CLI's settings loaded TensorFlow first.
    noise = [line for line in ok.stderr.splitlines() if "FutureWarning" in line or " tensorflow/" in line]
    noise += [line for line in ok.stderr.splitlines() if "external/local_" in line]
    assert not noise, noise[:5]
    anomalous = cli_validate("--data", bad, "--schema", HOUSE_SCHEMA, "--report", str(tmp_path / "r2"))
    assert anomalous.returncode == 1
    assert "bedrooms" in anomalous.stdout and "Inf values" in anomalous.stdout
    # numpy's "invalid value encountered" from TFDV's statistics of the inf, with library source lines
    assert "Warning" not in anomalous.stderr, anomalous.stderr
    unusable = cli_validate("--data", short, "--schema", HOUSE_SCHEMA, "--report", str(tmp_path / "r3"))
    assert unusable.returncode == 2
    assert unusable.stderr.strip().count("\n") == 0 and "2 fields, expected 3" in unusable.stderr
    assert "Traceback" not in unusable.stderr


@pytest.mark.parametrize("case, message", [("missing", "no such file"), ("folder", "not a file"), ("empty", "empty")])
def test_a_data_file_that_cannot_be_read_is_answered_before_tfdv_is_imported(tmp_path, case, message):
    data = {"missing": tmp_path / "nope.csv", "folder": tmp_path, "empty": tmp_path / "empty.csv"}[case]
    if case == "empty":
        data.write_text("")
    result = pipelines_cli(
        "validate",
        "--data",
        str(data),
        "--schema",
        HOUSE_SCHEMA,
        timeout=120,
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
    )
    imported = imported_modules(result.stderr)
    assert "pipelines.validate_checks" in imported  # the import log is there to read
    assert not {"tensorflow", "apache_beam", "tensorflow_data_validation"} & imported
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
