"""tests/coverage_imports.py: a listed package's first import runs with the trace function off, and
tracing resumes in the importing frame; anything else is imported traced, as before."""

import sys

import pytest

from tests import coverage_imports


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Two fresh top-level packages on sys.path: `heavypkg` listed as untraced, `ourpkg` not."""
    for name in ("heavypkg", "ourpkg"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("from . import sub\nVALUE = sub.f()\n")
        (tmp_path / name / "sub.py").write_text("def f():\n    return 42\n")
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("raise RuntimeError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(coverage_imports, "UNTRACED_IMPORTS", frozenset({"heavypkg", "brokenpkg"}))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    coverage_imports.install()
    yield tmp_path
    for name in ("heavypkg", "heavypkg.sub", "ourpkg", "ourpkg.sub", "brokenpkg"):
        sys.modules.pop(name, None)


def _traced_files(action):
    """The file of every frame a trace function was called for while `action` ran, as coverage's would be."""
    seen = []

    def tracer(frame, event, arg):
        seen.append(frame.f_code.co_filename)
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        action()
    finally:
        sys.settrace(previous)
    return seen


def test_a_listed_package_is_imported_untraced_and_tracing_resumes_after(packages):
    def action():
        import heavypkg

        assert heavypkg.VALUE == 42
        _after_the_import()

    seen = _traced_files(action)
    assert not [f for f in seen if "heavypkg" in f], seen
    assert any(f == __file__ for f in seen)  # _after_the_import: traced again
    import heavypkg

    assert type(heavypkg.__loader__).__name__ != "_UntracedLoader"  # the package sees its real loader
    assert heavypkg.__spec__.origin == str(packages / "heavypkg" / "__init__.py")


def _after_the_import():
    return None


def test_other_packages_are_imported_traced(packages):
    def action():
        import ourpkg

        assert ourpkg.VALUE == 42

    seen = _traced_files(action)
    assert [f for f in seen if f.endswith("ourpkg/__init__.py")] and [f for f in seen if f.endswith("ourpkg/sub.py")]


def test_a_failing_import_hands_the_tracer_back(packages):
    def action():
        with pytest.raises(RuntimeError, match="broken on purpose"):
            import brokenpkg  # noqa: F401
        _after_the_import()

    seen = _traced_files(action)
    assert any(f == __file__ for f in seen)
    assert "brokenpkg" not in sys.modules


def test_without_a_trace_function_imports_are_left_alone(packages):
    previous = sys.gettrace()
    sys.settrace(None)
    try:
        import heavypkg
    finally:
        sys.settrace(previous)
    assert heavypkg.VALUE == 42
    assert type(heavypkg.__spec__.loader).__name__ != "_UntracedLoader"
