"""Running the pipelines beyond one process: a Flink session cluster, two-host training, a shared MariaDB."""
