"""Pipelines: DAGs of components, the runner that executes them, and the CLI."""
