"""bench.robustness's factor sets: each held-out preset taken apart into its departures from `varied`."""

from __future__ import annotations

import dataclasses

import pytest

from bench.robustness import factor_sets, main
from components.example_gen.captcha_source import STYLES


def _differences(style, base) -> set[str]:
    return {f.name for f in dataclasses.fields(style) if getattr(style, f.name) != getattr(base, f.name)}


def test_each_factor_set_changes_only_what_its_name_says():
    base, sets = STYLES["varied"], factor_sets()
    for name, style in sets.items():
        preset, factor = name.split(":")
        if preset == "wheezy":
            assert style == ("wheezy", factor.removeprefix("without_")), name
            continue
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


@pytest.mark.parametrize(
    "style,fragment",
    [
        ('{"upright_share": 1}', "takes NAME=JSON"),  # no name
        ("upright=library", "takes NAME=JSON"),  # a preset's name is a --sets entry, not a style
        ('upright={"upright_share": 2}', "upright_share, unsmoothed_share"),
        ('upright={"tilt": 3}', "unknown render_style fields"),
    ],
)
def test_a_custom_style_that_is_not_one_is_refused_before_any_model_is_loaded(style, fragment, capsys):
    with pytest.raises(SystemExit) as refused:
        main(["--model", "/nonexistent", "--style", style])
    assert refused.value.code == 2 and fragment in capsys.readouterr().err


def test_the_inverted_set_is_the_training_family_with_every_colour_inverted():
    import io

    import numpy as np
    from PIL import Image

    from bench.robustness import SEED, InvertedRenderer
    from components.example_gen.captcha_source import CaptchaRenderer

    def rgb(png: bytes):
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), int)

    varied = CaptchaRenderer(seed=SEED, style="varied")
    inverted = InvertedRenderer(CaptchaRenderer(seed=SEED, style="varied"))
    for index in range(6):
        plain, flipped = varied.render(index), inverted.render(index)
        assert flipped.text == plain.text and flipped.key == plain.key
        np.testing.assert_array_equal(rgb(flipped.png), 255 - rgb(plain.png))


def test_wheezy_factor_sets_leave_out_one_step_each_and_nothing_else():
    from bench.robustness import WHEEZY_CHARACTER_STEPS, WHEEZY_IMAGE_STEPS, OutsideRenderer

    steps = (*WHEEZY_CHARACTER_STEPS, *WHEEZY_IMAGE_STEPS)
    assert {name for name in factor_sets() if name.startswith("wheezy:")} == {f"wheezy:without_{s}" for s in steps}
    full = [OutsideRenderer("wheezy", "0123456789", 4).render(i) for i in range(3)]
    for step in steps:
        without = [OutsideRenderer("wheezy", "0123456789", 4, without=(step,)).render(i) for i in range(3)]
        assert [c.text for c in without] == [c.text for c in full]  # the same texts, drawn another way
        assert all(a.png != b.png for a, b in zip(without, full)), step
    assert [c.png for c in full] == [
        OutsideRenderer("wheezy", "0123456789", 4, without=()).render(i).png for i in range(3)
    ]
    with pytest.raises(ValueError, match="no step"):
        OutsideRenderer("wheezy", "0123456789", 4, without=("blur",))


@pytest.mark.parametrize("generator", ["wheezy", "claptcha", "captchagen", "flask_simple", "multicolor"])
def test_outside_generators_draw_the_same_captcha_for_an_index_and_leave_random_alone(generator):
    import io
    import random

    from PIL import Image, ImageFont

    from bench.robustness import OUTSIDE, OutsideRenderer

    modules = {
        "wheezy": "wheezy.captcha",
        "claptcha": "claptcha",
        "captchagen": "CaptchaGen",
        "flask_simple": "flask_simple_captcha",
    }
    pytest.importorskip(modules.get(generator, "multicolorcaptcha"))
    assert generator in OUTSIDE
    had_getsize = hasattr(ImageFont.FreeTypeFont, "getsize")
    random.seed(7)
    state = random.getstate()
    first = [OutsideRenderer(generator, "0123456789", 4).render(i) for i in range(3)]
    again = [OutsideRenderer(generator, "0123456789", 4).render(i) for i in range(3)]
    assert random.getstate() == state  # the generators' draws come from a state of their own
    assert hasattr(ImageFont.FreeTypeFont, "getsize") == had_getsize  # claptcha's stand-in is gone again
    assert [c.png for c in first] == [c.png for c in again] and len({c.png for c in first}) == 3
    for captcha in first:
        assert len(captcha.text) == 4 and captcha.text.isdigit()
        width, height = Image.open(io.BytesIO(captcha.png)).size
        assert width > 2 * height >= 80, (width, height)


def test_multicolorcaptcha_draws_digits_only():
    from bench.robustness import OutsideRenderer

    with pytest.raises(ValueError, match="4 digits only"):
        OutsideRenderer("multicolor", "0123456789ABCDEF", 4)
    with pytest.raises(ValueError, match="unknown generator"):
        OutsideRenderer("recaptcha", "0123456789", 4)
