"""REST bodies: the fast JSON path reads and writes what TF Serving's does, edge cases included."""

import json

import pytest

from serving.model_server import json_codec
from serving.model_server.errors import ServingError


def test_answers_round_trip_through_any_json_reader():
    payload = {"predictions": [{"text": "4821", "confidence": 0.9831200242042542, "probabilities": [[0.1, 0.9]]}]}
    assert json.loads(json_codec.dumps(payload)) == payload


def test_non_finite_numbers_are_written_as_tf_serving_writes_them():
    body = json_codec.dumps({"outputs": [float("nan"), float("inf"), -float("inf"), 1.5]})
    assert body == b'{"outputs": [NaN, Infinity, -Infinity, 1.5]}'
    assert json_codec.dumps({"outputs": [None, 1.0]}) == b'{"outputs":[null,1.0]}'  # a real null stays null


def test_bodies_orjson_refuses_are_still_read():
    assert json_codec.parse_body(b'{"instances": [NaN, 1.0]}')["instances"][1] == 1.0
    big = json_codec.parse_body(b'{"instances": [9223372036854775807, -9223372036854775808]}')["instances"]
    assert big == [2**63 - 1, -(2**63)]  # int64 limits exactly
    assert json_codec.parse_body('{"instances": [1]}'.encode("utf-16"))["instances"] == [1]


@pytest.mark.parametrize("body", [b"", b"{", b"[1, 2]", b'{"instances": [1,]}', b"\xff\xfe\x00"])
def test_bad_bodies_are_400_with_a_message(body):
    with pytest.raises(ServingError) as raised:
        json_codec.parse_body(body)
    assert raised.value.http_status == 400 and raised.value.message


@pytest.mark.parametrize(("literal", "shown"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")])
def test_a_non_finite_number_where_a_string_belongs_is_named_as_sent(literal, shown):
    import tensorflow as tf

    body = json_codec.parse_body(f'{{"instances": [{literal}]}}'.encode())
    with pytest.raises(ServingError) as raised:
        json_codec.to_array(body["instances"], tf.TensorSpec([None], tf.string), "image_bytes")
    assert raised.value.http_status == 400
    assert raised.value.message.endswith(f"got {shown}"), raised.value.message  # orjson alone would say "null"
