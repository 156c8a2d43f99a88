from __future__ import annotations

import json
import os

import apache_beam as beam
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
from tfx_bsl.public import tfxio

from components.base import BaseBeamExecutor, fileio
from components.base.beam import CountProgress
from components.base.functions import load_function
from components.example_gen.executor import TFRECORD_SUFFIX
from components.schema_gen.schema_io import load_schema
from components.transform.component import (
    ANALYZE_SPLIT_KEY,
    EXAMPLES_KEY,
    PREPROCESSING_FN_KEY,
    PREPROCESSING_PARAMS_KEY,
    SCHEMA_KEY,
    TRANSFORM_GRAPH_KEY,
    TRANSFORMED_EXAMPLES_KEY,
)

TRANSFORM_FN_DIR = tft.TFTransformOutput.TRANSFORM_FN_DIR


class TransformExecutor(BaseBeamExecutor):
    """tf.Transform on Beam: analyzes `analyze_split`, then transforms every split with the same graph.

    Inputs: `examples`, `schema` (gives the raw feature spec). Outputs: `transform_graph` (the
    TFTransformOutput folder the Trainer embeds in the export), `transformed_examples` (gzip
    TFRecords per split). Parameters: `preprocessing_fn` (module:factory called with
    `preprocessing_params`, a JSON object), `analyze_split`."""

    def Do(self, input_dict, output_dict, exec_properties):
        [examples] = input_dict[EXAMPLES_KEY]
        [schema_artifact] = input_dict[SCHEMA_KEY]
        [graph] = output_dict[TRANSFORM_GRAPH_KEY]
        [transformed] = output_dict[TRANSFORMED_EXAMPLES_KEY]
        params = json.loads(exec_properties[PREPROCESSING_PARAMS_KEY] or "{}")
        preprocessing_fn = load_function(exec_properties[PREPROCESSING_FN_KEY])(params)
        raw_schema = load_schema(schema_artifact.uri)
        analyze_split = exec_properties[ANALYZE_SPLIT_KEY]
        if analyze_split not in examples.split_names:
            raise ValueError(f"analyze_split {analyze_split!r} is not a split of the examples ({examples.split_names})")

        def raw_source(split):
            return tfxio.TFExampleRecord(
                file_pattern=examples.split_files(split),
                schema=raw_schema,
                telemetry_descriptors=["Transform"],
            )

        pipeline = self._make_beam_pipeline()
        with tft_beam.Context(temp_dir=self.context.tmp_dir):
            analyze_source = raw_source(analyze_split)
            raw_data = pipeline | f"Read[{analyze_split}]" >> analyze_source.BeamSource()
            transform_fn = (
                raw_data,
                analyze_source.TensorAdapterConfig(),
            ) | "Analyze" >> tft_beam.AnalyzeDataset(preprocessing_fn)
            _ = transform_fn | "WriteTransformGraph" >> tft_beam.WriteTransformFn(graph.uri)
            for split in examples.split_names:
                source = analyze_source if split == analyze_split else raw_source(split)
                data = raw_data if split == analyze_split else pipeline | f"Read[{split}]" >> source.BeamSource()
                (transformed_data, metadata) = (
                    (data, source.TensorAdapterConfig()),
                    transform_fn,
                ) | f"Transform[{split}]" >> tft_beam.TransformDataset(output_record_batches=True)
                _ = (
                    transformed_data
                    | f"Encode[{split}]" >> beam.FlatMapTuple(lambda batch, _: _encode(batch))
                    | f"Progress[{split}]" >> beam.ParDo(CountProgress(f"Transform[{split}]", every=5000))
                    | f"Write[{split}]"
                    >> beam.io.WriteToTFRecord(
                        transformed.split_prefix(split),
                        file_name_suffix=TFRECORD_SUFFIX,
                        compression_type=beam.io.filesystem.CompressionTypes.GZIP,
                    )
                )
        self._run_beam_pipeline(pipeline, written=[transformed])
        # The raw schema beside the graph: serving parses raw inputs with it.
        metadata_io.write_metadata(
            dataset_metadata.DatasetMetadata(raw_schema),
            os.path.join(graph.uri, tft.TFTransformOutput.RAW_METADATA_DIR),
        )
        for split in examples.split_names:
            fileio.makedirs(transformed.split_uri(split))
        transformed.split_names = examples.split_names
        transformed.set("payload_format", "FORMAT_TF_EXAMPLE")


def _encode(record_batch):
    from tfx_bsl.coders import example_coder

    return example_coder.RecordBatchToExamples(record_batch)
