"""The statistics page's helpers (components/statistics_gen/stats_html.py)."""

from components.statistics_gen.stats_html import _printable, _tick


def test_tick_labels_write_control_characters_as_escapes_and_keep_twelve_characters():
    """A NUL in a CSV cell reached matplotlib as a glyph no font has: a UserWarning in `validate`'s output."""
    assert _tick("4\x00") == "4\\x00"
    assert _tick("a\tb\nc") == "a\\tb\\nc"
    assert _tick("Springfield, Illinois") == "Springfield,"
    assert _tick("ünïcode") == "ünïcode"  # printable: as it is


def test_table_cells_escape_html_and_name_unprintable_values_by_size():
    assert _printable("<b>") == "&lt;b&gt;"
    assert _printable("4\x00") == "&lt;2 bytes&gt;"
    assert _printable("x" * 50) == "x" * 37 + "..."
