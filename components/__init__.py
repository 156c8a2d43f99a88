"""TFX-style components: each folder declares a contract (component.py) and does the work (executor.py)."""
