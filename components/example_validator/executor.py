from __future__ import annotations

import os

import tensorflow_data_validation as tfdv

from components.base import BaseExecutor, fileio
from components.example_validator.anomalies_io import anomaly_rows, write_anomalies
from components.example_validator.component import (
    ANOMALIES_KEY,
    BASELINE_SPLIT_KEY,
    ENVIRONMENT_KEY,
    SCHEMA_KEY,
    STATISTICS_KEY,
)
from components.example_validator.drift_chart import DRIFT_CHART, draw_drift
from components.schema_gen.schema_io import load_schema
from components.statistics_gen.stats_html import statistics_html
from components.statistics_gen.stats_io import HTML_FILE, load_split_statistics


class ExampleValidatorExecutor(BaseExecutor):
    """Checks every split's statistics against the schema (TFDV) and measures drift from `baseline_split`.

    Inputs: `statistics` (ExampleStatistics per split), `schema`. Output: `anomalies` (anomalies.json
    and SchemaDiff.pbtxt per split; drift.png when the schema configures drift or skew comparators;
    statistics.html, the statistics page with the anomalies listed and their features marked;
    property `num_anomalies`). Parameters: `stop_on_anomalies` (the
    component's gate stops the run with one message), `environment` (the schema environment, e.g.
    TRAINING), `baseline_split`."""

    def Do(self, input_dict, output_dict, exec_properties):
        [statistics] = input_dict[STATISTICS_KEY]
        [schema_artifact] = input_dict[SCHEMA_KEY]
        [anomalies] = output_dict[ANOMALIES_KEY]
        schema = load_schema(schema_artifact.uri)
        baseline_split = exec_properties[BASELINE_SPLIT_KEY]
        baseline = (
            load_split_statistics(statistics, baseline_split) if baseline_split in statistics.split_names else None
        )
        environment = exec_properties[ENVIRONMENT_KEY]
        if environment and environment not in schema.default_environment:
            environment = None  # e.g. an inferred schema: it has no environments, every feature applies
        total = 0
        by_split, results, found = {}, {}, {}
        for split in statistics.split_names:
            stats = by_split[split] = load_split_statistics(statistics, split)
            result = tfdv.validate_statistics(
                stats,
                schema,
                environment=environment,
                previous_statistics=baseline if split != baseline_split else None,
            )
            results[split] = result
            rows = anomaly_rows(result, stats)
            found[split] = rows
            total += len(rows)
            write_anomalies(anomalies.split_uri(split), result, rows)
        drift = DRIFT_CHART if draw_drift(results, os.path.join(anomalies.uri, DRIFT_CHART), baseline_split) else ""
        # The statistics page again, with what the validator found: anomalies listed and marked, drift drawn.
        with fileio.open(os.path.join(anomalies.uri, HTML_FILE), "w") as f:
            f.write(
                statistics_html(
                    by_split,
                    f"{self.context.pipeline_name}: statistics checked against the schema",
                    drift_chart=drift,
                    anomalies=found,
                )
            )
        anomalies.split_names = statistics.split_names
        anomalies.set("num_anomalies", total)
