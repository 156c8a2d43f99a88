"""House-price regression: the book's linear model on z-scored features (or a small DNN),
exported to take raw `area` and `bedrooms` through the embedded tf.Transform graph."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.trainer.fn_args import FnArgs
from components.trainer.signatures import REGRESS_METHOD, set_method_names
from pipelines.house_price.preprocessing import FEATURE_KEYS, LABEL_KEY
from pipelines.house_price.train_config import HousePriceTrainConfig
from pipelines.training import (
    callbacks,
    distribution_strategy,
    make_optimizer,
    record_training,
)


def load_arrays(file_pattern: str, feature_spec: dict) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The transformed split as arrays: house-price data fits in memory by design."""
    files = tf.io.gfile.glob(file_pattern)
    if not files:
        raise ValueError(f"no examples match {file_pattern}")
    spec = {k: feature_spec[k] for k in (*FEATURE_KEYS, LABEL_KEY)}
    features = {k: [] for k in spec}
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024):
        parsed = tf.io.parse_example(batch, spec)
        for key in spec:
            features[key].append(parsed[key].numpy().reshape(-1))
    arrays = {k: np.concatenate(v).astype(np.float32) for k, v in features.items()}
    label = arrays.pop(LABEL_KEY)
    return arrays, label


def build_model(config: HousePriceTrainConfig) -> keras.Model:
    """z-scored features -> linear (or DNN) -> the price's z-score."""
    regularizer = keras.regularizers.l2(config.l2) if config.l2 > 0 else None
    inputs = {name: keras.Input(shape=(1,), name=name) for name in FEATURE_KEYS}
    x = keras.layers.Concatenate()([inputs[name] for name in FEATURE_KEYS])
    if config.model == "dnn":
        for units in config.units:
            x = keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer)(x)
            x = keras.layers.Dropout(config.dropout)(x)
    price_z = keras.layers.Dense(1, kernel_regularizer=regularizer, name="price_z")(x)
    return keras.Model(inputs, price_z, name=f"house_price_{config.model}")


def with_price_scale(model: keras.Model, mean: float, std: float) -> keras.Model:
    """The trained model, its output turned back from a z-score into a price."""
    price = keras.layers.Rescaling(scale=std, offset=mean, name=LABEL_KEY)(model.output)
    return keras.Model(model.inputs, price, name=model.name)


class PriceRMSE(keras.metrics.RootMeanSquaredError):
    """RMSE in price units, for a model trained on the price's z-score."""

    def __init__(self, std: float = 1.0, name: str = "rmse", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.std = std

    def result(self):
        return super().result() * self.std


class HousePriceServingModule(tf.Module):
    def __init__(self, model: keras.Model, transform_output: tft.TFTransformOutput) -> None:
        super().__init__()
        self.model = model
        self.tft_layer = transform_output.transform_features_layer()
        raw = transform_output.raw_feature_spec()
        self.raw_spec = {name: raw[name] for name in FEATURE_KEYS}

    def _predict(self, raw_features):
        transformed = self.tft_layer(raw_features)
        return tf.reshape(self.model({k: transformed[k] for k in FEATURE_KEYS}, training=False), [-1])

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="area"),
            tf.TensorSpec([None], tf.int64, name="bedrooms"),
        ]
    )
    def serve_raw(self, area, bedrooms):
        return {
            LABEL_KEY: self._predict({"area": tf.reshape(area, [-1, 1]), "bedrooms": tf.reshape(bedrooms, [-1, 1])})
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        """TF Serving's Regress API: serialized tf.Example in, the price as `outputs`."""
        return {"outputs": self._predict(tf.io.parse_example(inputs, self.raw_spec))[:, None]}


def export(model: keras.Model, transform_graph_dir: str, path: str) -> None:
    module = HousePriceServingModule(model, tft.TFTransformOutput(transform_graph_dir))
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve_raw, "regress": module.regress})
    set_method_names(path, {"regress": REGRESS_METHOD})


def train(fn_args: FnArgs) -> keras.Model:
    """Fit on the train split (validation on eval); return the model that outputs prices."""
    config = HousePriceTrainConfig.from_dict(fn_args.config)
    feature_spec = tft.TFTransformOutput(fn_args.transform_graph_dir).transformed_feature_spec()
    train_x, train_y = load_arrays(fn_args.train_files, feature_spec)
    eval_x, eval_y = load_arrays(fn_args.eval_files, feature_spec)
    mean, std = float(train_y.mean()), float(train_y.std()) or 1.0
    steps_per_epoch = -(-len(train_y) // config.batch_size)
    with distribution_strategy(config).scope():
        model = build_model(config)
        # The loss is on the price's z-score, so every optimiser sees O(1) numbers.
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss=keras.losses.MeanSquaredError(),
            metrics=[PriceRMSE(std)],
        )
    validation = (eval_x, (eval_y - mean) / std) if len(eval_y) else None
    history = model.fit(
        train_x,
        (train_y - mean) / std,
        validation_data=validation,
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        callbacks=(used := callbacks(config, fn_args.log_dir, log_every=max(1, config.epochs // 10))),
        verbose=0,
    )
    record_training(used, history.history, fn_args, ["rmse"], f"{fn_args.model_name}: train vs validation")
    return with_price_scale(model, mean, std)


def run_fn(fn_args: FnArgs) -> None:
    export(train(fn_args), fn_args.transform_graph_dir, fn_args.serving_model_dir)
