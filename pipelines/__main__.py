import sys

from pipelines.cli import main


def _quiet_at_exit(unraisable) -> None:
    """TensorFlow functions still held by a library's caches when a TensorFlow step failed are freed
    at interpreter exit, after TensorFlow's module globals are cleared: each printed "Exception ignored
    in: <function AtomicFunction.__del__ ...> TypeError: 'NoneType' object is not subscriptable" under
    the run's error line. Only that one is dropped, and only once the run is over."""
    where = getattr(unraisable.object, "__qualname__", "")
    if where == "AtomicFunction.__del__" and unraisable.exc_type is TypeError:
        return
    sys.__unraisablehook__(unraisable)


code = main()
sys.unraisablehook = _quiet_at_exit
sys.exit(code)
