"""TF Serving's Classify and Regress APIs look for a signature's method name, which
`tf.saved_model.save` always writes as Predict. Rewrite it for those signatures."""

from __future__ import annotations

import os

from tensorflow.core.protobuf import saved_model_pb2

from components.base import fileio
from serving.layout import CLASSIFY_METHOD, REGRESS_METHOD  # noqa: F401 - what the exports name


def set_method_names(saved_model_dir: str, methods: dict[str, str]) -> None:
    path = os.path.join(saved_model_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with fileio.open(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        for name, method in methods.items():
            if name not in meta_graph.signature_def:
                raise KeyError(f"no signature {name!r} in {saved_model_dir}")
            meta_graph.signature_def[name].method_name = method
    with fileio.open(path, "wb") as f:
        f.write(saved_model.SerializeToString())
