"""ExampleGen executors: one Beam pipeline per run, sources differ, the split and write are shared."""

from __future__ import annotations

import apache_beam as beam
import tensorflow as tf
from apache_beam.coders import BytesCoder

from components.base import BaseBeamExecutor, Examples, fileio
from components.base.beam import CountProgress, split_counts
from components.example_gen import csv_source, idx_source
from components.example_gen.captcha_source import CaptchaConfig, CaptchaRenderer, RenderStyle
from components.example_gen.component import (
    CHARSET_KEY,
    EXAMPLES_KEY,
    HEIGHT_KEY,
    INPUT_PATH_KEY,
    LENGTH_KEY,
    NUM_EXAMPLES_KEY,
    RENDER_STYLE_KEY,
    SCHEMA_PATH_KEY,
    SEED_KEY,
    SPLIT_KEY_KEY,
    SPLITS_KEY,
    TEST_SPLIT_KEY,
    WIDTH_KEY,
)
from components.example_gen.image_source import list_images, read_image
from components.example_gen.splits import SplitConfig

TFRECORD_SUFFIX = ".tfrecord.gz"


def bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def image_example(image: bytes, label: str) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(feature={"image": bytes_feature(image), "label": bytes_feature(label.encode())})
    )


class WriteSplits(beam.PTransform):
    """(key, tf.train.Example) pairs -> one gzip TFRecord folder per split, chosen by key hash."""

    def __init__(self, splits: SplitConfig, examples: Examples, split_of=None) -> None:
        super().__init__()
        self.splits = splits
        self.examples = examples
        # key -> split index; by default the key's hash over the split weights
        self.split_of = split_of or splits.index_for

    def expand(self, keyed_examples):
        parts = keyed_examples | "SplitByKeyHash" >> beam.Partition(
            lambda kv, _n, split_of=self.split_of: split_of(kv[0]), len(self.splits.names)
        )
        for index, name in enumerate(self.splits.names):
            _ = (
                parts[index]
                | f"Count[{name}]" >> beam.Map(split_counts.count, name)
                | f"Serialize[{name}]" >> beam.Map(lambda kv: kv[1].SerializeToString())
                | f"Write[{name}]"
                >> beam.io.WriteToTFRecord(
                    self.examples.split_prefix(name),
                    file_name_suffix=TFRECORD_SUFFIX,
                    compression_type=beam.io.filesystem.CompressionTypes.GZIP,
                )
            )
        return parts


class _ExampleGenExecutor(BaseBeamExecutor):
    """The shared half of every ExampleGen: a source of (key, tf.train.Example) pairs, split by a stable
    hash of the key and written as gzip TFRecords.

    No inputs. Output: `examples` (Split-<name>/ folders; properties `split_names`,
    `num_examples` and `num_examples_<split>`). Parameters: `splits` (name:weight pairs) and
    each source's own (see component.py)."""

    def source(self, pipeline, exec_properties):  # -> PCollection[(key, Example)]
        raise NotImplementedError

    def split_of(self, splits: SplitConfig, exec_properties):
        """key -> split index; None: by the key's hash over the split weights."""
        return None

    def Do(self, input_dict, output_dict, exec_properties):
        [examples] = output_dict[EXAMPLES_KEY]
        splits = SplitConfig.parse(exec_properties[SPLITS_KEY])
        pipeline = self._make_beam_pipeline()
        keyed = self.source(pipeline, exec_properties) | "Progress" >> beam.ParDo(
            CountProgress(f"{self.context.component_id}: examples", every=2000)
        )
        _ = keyed | "WriteSplits" >> WriteSplits(splits, examples, self.split_of(splits, exec_properties))
        result = self._run_beam_pipeline(pipeline, written=[examples])
        counts = split_counts.read(result, splits.names)
        for name in splits.names:
            # Beam writes no shard for an empty split; readers expect the folder.
            fileio.makedirs(examples.split_uri(name))
        examples.split_names = list(splits.names)
        examples.set("payload_format", "FORMAT_TF_EXAMPLE")
        if counts is not None:
            examples.set("num_examples", sum(counts.values()))
            for name, count in counts.items():
                examples.properties[f"num_examples_{name}"] = count
            self.log.info("examples per split: %s", counts)
            if sum(counts.values()) == 0:
                raise ValueError("the source produced no examples")


class CaptchaExampleGenExecutor(_ExampleGenExecutor):
    def source(self, pipeline, p):
        config = CaptchaConfig(charset=p[CHARSET_KEY], length=p[LENGTH_KEY], width=p[WIDTH_KEY], height=p[HEIGHT_KEY])
        if p[NUM_EXAMPLES_KEY] < 1:
            raise ValueError(f"num_examples must be >= 1, got {p[NUM_EXAMPLES_KEY]}")
        seed = p[SEED_KEY]
        style = RenderStyle.parse(p[RENDER_STYLE_KEY])

        class Render(beam.DoFn):
            def setup(self):
                self.renderer = CaptchaRenderer(config, seed, style)

            def process(self, index):
                captcha = self.renderer.render(index)
                yield captcha.key, image_example(captcha.png, captcha.text)

        return (
            pipeline
            | "Indices" >> beam.Create(range(p[NUM_EXAMPLES_KEY]))
            | "Distribute" >> beam.Reshuffle()
            | "RenderCaptchas" >> beam.ParDo(Render())
        )


class CsvExampleGenExecutor(_ExampleGenExecutor):
    def source(self, pipeline, p):
        path = p[INPUT_PATH_KEY]
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"no such CSV file: {path}")
        typed_columns = None
        if p[SCHEMA_PATH_KEY]:
            from components.schema_gen.schema_io import load_schema

            typed_columns = csv_source.schema_columns(load_schema(p[SCHEMA_PATH_KEY]))
        names, has_header = csv_source.resolve_header(
            csv_source.parse_line(csv_source.read_first_line(path)),
            [name for name, _ in typed_columns] if typed_columns else None,
        )
        key_column = p[SPLIT_KEY_KEY]
        if key_column is not None and key_column not in names:
            raise ValueError(f"split_key {key_column!r} is not a column ({', '.join(names)})")
        lines = (
            pipeline
            | "ReadCsv" >> beam.io.ReadFromText(path, skip_header_lines=1 if has_header else 0, coder=BytesCoder())
            | "DecodeUtf8" >> beam.Map(csv_source.decode_line, path)
        )
        lines = lines | "DropBlankLines" >> beam.Filter(lambda line: line.strip())
        lines = lines | "DropByteOrderMark" >> beam.Map(csv_source.without_bom)
        rows = lines | "ParseCsv" >> beam.Map(lambda line: (line, csv_source.parse_line(line)))
        if typed_columns:
            kinds = dict(typed_columns)
            columns = beam.pvalue.AsSingleton(
                pipeline | "SchemaColumns" >> beam.Create([[(n, kinds[n]) for n in names]])
            )
        else:
            columns = beam.pvalue.AsSingleton(
                rows
                | "RowKinds" >> beam.Map(lambda lr: csv_source.row_kinds(lr[1]))
                | "InferKinds" >> beam.CombineGlobally(csv_source.infer_kinds)
                | "NameKinds" >> beam.Map(lambda kinds: [(n, k or csv_source.BYTES) for n, k in zip(names, kinds)])
            )
        key_index = names.index(key_column) if key_column else None

        def to_keyed_example(line_and_fields, columns):
            line, fields = line_and_fields
            key = fields[key_index] if key_index is not None and key_index < len(fields) else line
            return key, csv_source.to_example(fields, columns, line)

        return rows | "ToExamples" >> beam.Map(to_keyed_example, columns)


class ImageExampleGenExecutor(_ExampleGenExecutor):
    def source(self, pipeline, p):
        files = list_images(p[INPUT_PATH_KEY])
        return (
            pipeline
            | "ListImages" >> beam.Create(files)
            | "Distribute" >> beam.Reshuffle()
            | "ReadImages" >> beam.Map(lambda item: (item[0], image_example(read_image(item[1]), item[2])))
        )


class IdxExampleGenExecutor(_ExampleGenExecutor):
    """MNIST's IDX files -> `image` (PNG bytes) and `label` (the digit as text) examples.

    With only the t10k pair every split comes from it by key hash; with the train
    pair too, the test split is t10k and the other splits share the train files."""

    CHUNK = 1000  # images per Beam element: each worker reads the arrays once

    def source(self, pipeline, p):
        chunks = []
        for pair in idx_source.find_sets(p[INPUT_PATH_KEY]).values():
            images, _ = pair.load()  # a bad file fails here, with its name, before Beam starts
            self.log.info("%s: %d images of %dx%d", pair.name, len(images), *images.shape[1:])
            chunks += [(pair, start) for start in range(0, len(images), self.CHUNK)]
        chunk = self.CHUNK

        class ReadChunk(beam.DoFn):
            def setup(self):
                self.arrays = {}

            def process(self, item):
                pair, start = item
                if pair.name not in self.arrays:
                    self.arrays[pair.name] = pair.load()
                images, labels = self.arrays[pair.name]
                for index in range(start, min(start + chunk, len(labels))):
                    key = f"{pair.name}/{index:05d}"
                    yield key, image_example(idx_source.encode_png(images[index]), str(int(labels[index])))

        return (
            pipeline
            | "Chunks" >> beam.Create(chunks)
            | "Distribute" >> beam.Reshuffle()
            | "ReadIdx" >> beam.ParDo(ReadChunk())
        )

    def split_of(self, splits: SplitConfig, p):
        if "train" not in idx_source.find_sets(p[INPUT_PATH_KEY]):
            return None
        test = p[TEST_SPLIT_KEY]
        if test not in splits.names or len(splits.names) < 2:
            raise ValueError(
                f"with the train files given, splits must include {test!r} and another split, got {p[SPLITS_KEY]!r}"
            )
        test_index = splits.names.index(test)
        others = SplitConfig(
            tuple(n for n in splits.names if n != test),
            tuple(w for n, w in zip(splits.names, splits.weights) if n != test),
        )
        indices = [i for i, n in enumerate(splits.names) if n != test]

        def split_of(key: str) -> int:
            return test_index if key.startswith("t10k/") else indices[others.index_for(key)]

        return split_of
