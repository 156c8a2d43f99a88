"""bench.robustness's factor sets: each held-out preset taken apart into its departures from `varied`."""

from __future__ import annotations

import dataclasses

from bench.robustness import factor_sets
from components.example_gen.captcha_source import STYLES


def _differences(style, base) -> set[str]:
    return {f.name for f in dataclasses.fields(style) if getattr(style, f.name) != getattr(base, f.name)}


def test_each_factor_set_changes_only_what_its_name_says():
    base, sets = STYLES["varied"], factor_sets()
    for name, style in sets.items():
        preset, factor = name.split(":")
        if preset == "heldout_fonts":
            assert style.fonts == (factor,) and _differences(style, base) == {"fonts"}
        else:
            assert _differences(style, base) == set(factor.split("+")), name
            for field in factor.split("+"):  # with the held-out preset's value
                assert getattr(style, field) == getattr(STYLES[preset], field)


def test_factor_sets_cover_every_departure_of_every_held_out_preset():
    sets = factor_sets()
    for preset, style in STYLES.items():
        if not preset.startswith("heldout_"):
            continue
        covered = set()
        for name, factor_style in sets.items():
            if name.startswith(preset + ":"):
                covered |= _differences(factor_style, STYLES["varied"])
        assert covered == _differences(style, STYLES["varied"]), preset
    assert {f"heldout_fonts:{font}" for font in STYLES["heldout_fonts"].fonts} <= sets.keys()
    assert "heldout_geometry:overlap" in sets and "heldout_noise:ink+paper" in sets  # paper alone is not a style
