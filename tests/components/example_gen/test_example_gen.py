"""ExampleGen: deterministic captchas, stable hash splits, CSV with and without header, image folders."""

from __future__ import annotations

import collections
import os

import pytest

from components.example_gen import CaptchaExampleGen, CsvExampleGen, ImageExampleGen
from components.example_gen.captcha_source import (
    ALPHANUMERIC,
    FONTS,
    STYLES,
    TRAINING_STYLE,
    CaptchaConfig,
    CaptchaRenderer,
    RenderStyle,
)
from components.example_gen.splits import SplitConfig
from pipelines.house_price import SCHEMA_PATH as HOUSE_SCHEMA
from tests.components.helpers import feature_values, read_examples, run_components


def test_captcha_rendering_is_byte_for_byte_deterministic_for_a_seed():
    first = [CaptchaRenderer(seed=7).render(i) for i in range(5)]
    # Another renderer, indices in another order: the same bytes.
    second = {i: CaptchaRenderer(seed=7).render(i) for i in reversed(range(5))}
    for i, captcha in enumerate(first):
        assert captcha.png == second[i].png
        assert captcha.text == second[i].text
    assert first[0].png != first[1].png
    assert CaptchaRenderer(seed=8).render(0).png != first[0].png


def test_captcha_labels_follow_the_config():
    renderer = CaptchaRenderer(CaptchaConfig(charset=ALPHANUMERIC, length=6, width=200, height=70), seed=1)
    texts = [renderer.render(i).text for i in range(50)]
    assert all(len(t) == 6 and set(t) <= set(ALPHANUMERIC) for t in texts)
    assert any(c.isalpha() for t in texts for c in t)
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(renderer.render(0).png)).size == (200, 70)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_is_deterministic_per_seed_and_index(style):
    first = [CaptchaRenderer(seed=5, style=style).render(i).png for i in range(6)]
    assert first == [CaptchaRenderer(seed=5, style=style).render(i).png for i in range(6)]
    assert len(set(first)) == 6


def test_the_training_style_varies_size_format_font_and_colour():
    import io

    from PIL import Image

    renderer = CaptchaRenderer(seed=2, style=TRAINING_STYLE)
    images = [Image.open(io.BytesIO(renderer.render(i).png)) for i in range(60)]
    style = STYLES[TRAINING_STYLE]
    assert {im.size for im in images} == set(style.sizes) | set(style.canvases)
    assert {im.format for im in images} == {"PNG", "JPEG"}
    papers = {im.convert("RGB").getpixel((0, 0)) for im in images}
    assert len(papers) > 30
    assert len(STYLES[TRAINING_STYLE].fonts) >= 5 and all(
        os.path.isfile(FONTS[f]) for f in STYLES[TRAINING_STYLE].fonts
    )


@pytest.mark.parametrize("glyph_mask,dark_share", [("shape", (0.04, 1.0)), ("brightness", (0.0, 0.002))])
def test_dark_ink_is_pasted_whole_only_with_the_shape_mask(glyph_mask, dark_share):
    """The package pastes a character through its own grey level, so near-black ink comes out almost
    transparent; the shape mask pastes it whole. Characters alone (no dots, no curves, no JPEG)."""
    import io

    import numpy as np
    from PIL import Image

    style = f'{{"preset": "library", "ink": [0, 12], "dots": [0, 0], "curves": [0, 0], "glyph_mask": "{glyph_mask}"}}'
    renderer = CaptchaRenderer(seed=1, style=style)
    grey = np.stack([np.asarray(Image.open(io.BytesIO(renderer.render(i).png)).convert("L")) for i in range(8)])
    share = float((grey < 100).mean())  # paper is 238-255: dark pixels are the characters' ink
    assert dark_share[0] <= share <= dark_share[1], share


def test_text_opacity_makes_dark_ink_faint_but_there():
    import io

    import numpy as np
    from PIL import Image

    style = '{"preset": "library", "ink": [0, 12], "dots": [0, 0], "curves": [0, 0], "glyph_mask": "shape"}'
    faint = CaptchaRenderer(seed=1, style=style[:-1] + ', "text_opacity": [0.3, 0.3]}')
    grey = np.stack([np.asarray(Image.open(io.BytesIO(faint.render(i).png)).convert("L")) for i in range(8)])
    assert (grey < 100).mean() < 0.002  # nothing near the ink's black
    assert ((grey > 140) & (grey < 200)).mean() > 0.04  # the characters, at ~30% of the way to it


def test_the_training_style_pastes_characters_by_their_shape():
    assert STYLES[TRAINING_STYLE].glyph_mask == "shape"
    assert STYLES["library"].glyph_mask == "brightness"  # the package as it ships


def _greys(style: str, count: int = 40):
    import io

    import numpy as np
    from PIL import Image

    renderer = CaptchaRenderer(seed=1, style=style)
    return [np.asarray(Image.open(io.BytesIO(renderer.render(i).png)).convert("L")) for i in range(count)]


def test_faint_share_mixes_faint_captchas_in_and_keeps_them_readable():
    """With faint_share, that share of captchas is pasted through the glyph's brightness (the
    package's faint dark ink), but never so dark that the text vanishes: ink stays at 40 or more."""
    base = '{"preset": "library", "ink": [0, 60], "dots": [0, 0], "curves": [0, 0], "glyph_mask": "shape"'
    whole = [float((g < 100).mean()) for g in _greys(base + "}")]
    mixed = [float((g < 100).mean()) for g in _greys(base + ', "faint_share": 0.5}')]
    assert min(whole) > 0.02  # shape mask: every captcha's characters are dark
    faint = [share for share in mixed if share < 0.002]  # pasted at 30-47% opacity: nothing near the ink
    assert 8 <= len(faint) <= 32, mixed
    # ... and yet there: the characters stand out from the paper (238-255) in every faint captcha.
    greys = _greys(base + ', "faint_share": 1.0}', 12)
    assert all(((g > 120) & (g < 215)).mean() > 0.03 for g in greys)


@pytest.mark.parametrize("share,upright", [(0.0, (0, 0)), (0.3, (15, 45)), (1.0, (100, 100))])
def test_upright_share_draws_that_share_of_characters_unrotated(share, upright, monkeypatch):
    """Pillow returns a glyph rotated by 0 degrees untouched (no resampling): the sharp upright
    characters of generators that do not rotate, which a range of angles never draws."""
    from PIL import Image

    angles = []
    rotate = Image.Image.rotate

    def recording(image, angle, *args, **kwargs):
        angles.append(angle)
        return rotate(image, angle, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "rotate", recording)
    style = RenderStyle.parse(f'{{"upright_share": {share}}}')
    renderer = CaptchaRenderer(seed=3, style=style)
    pngs = [renderer.render(i).png for i in range(25)]  # 100 characters, and as many blanks or fewer
    assert 100 <= len(angles) <= 200
    assert pngs == [CaptchaRenderer(seed=3, style=style).render(i).png for i in range(25)]  # still per index
    del angles[len(angles) // 2 :]
    upright_share = 100 * sum(a == 0 for a in angles) / len(angles)
    assert upright[0] <= upright_share <= upright[1], upright_share
    assert all(style.rotate[0] <= a <= style.rotate[1] for a in angles)


@pytest.mark.parametrize("share,smoothed", [(0.0, (40, 40)), (0.5, (10, 30)), (1.0, (0, 0))])
def test_unsmoothed_share_leaves_that_share_of_captchas_sharp(share, smoothed, monkeypatch):
    from PIL import Image, ImageFilter

    calls = []
    smooth = Image.Image.filter
    monkeypatch.setattr(
        Image.Image, "filter", lambda image, f: calls.append(f is ImageFilter.SMOOTH) or smooth(image, f)
    )
    _greys(f'{{"preset": "library", "unsmoothed_share": {share}}}')
    assert smoothed[0] <= sum(calls) <= smoothed[1]


def test_perspective_share_shrinks_characters_inside_their_cells():
    """Pasted unscaled into a larger box and mapped back, a character comes out smaller: less ink."""
    import numpy as np

    base = '{"preset": "library", "ink": [0, 0], "dots": [0, 0], "curves": [0, 0], "glyph_mask": "shape"'

    def ink(style: str) -> float:
        return float(np.mean([(g < 128).mean() for g in _greys(style, 30)]))

    plain, warped = ink(base + "}"), ink(base + ', "perspective_share": 1, "perspective": [0.3, 0.4]}')
    assert warped < 0.8 * plain, (warped, plain)
    assert ink(base + ', "perspective_share": 1, "perspective": [0, 0]}') == pytest.approx(plain, rel=0.1)


@pytest.mark.parametrize("size_by,ratio", [("points", (0.55, 0.8)), ("height", (0.9, 1.1))])
def test_size_by_height_draws_every_font_as_tall(size_by, ratio):
    """The package sizes a character's box by the bottom of its text box, so at one font size
    cmr10's digits come out about two thirds as tall as STIX's; by height they are as tall."""
    import numpy as np

    def height(font: str) -> float:
        style = (
            f'{{"preset": "library", "fonts": ["{font}"], "font_sizes": [46], "size_by": "{size_by}", '
            '"rotate": [0, 0], "warp_dx": [0, 0], "warp_dy": [0, 0], "offset_dy": [0, 0], "ink": [0, 0], '
            '"dots": [0, 0], "curves": [0, 0], "glyph_mask": "shape"}'
        )
        rows = [np.flatnonzero((g < 128).any(axis=1)) for g in _greys(style, 12)]
        return float(np.median([r[-1] - r[0] + 1 for r in rows]))

    assert ratio[0] <= height("cmr10") / height("STIXGeneral") <= ratio[1]


def test_a_canvas_keeps_the_font_sizes_for_60_high_where_a_size_scales_them():
    """`ImageCaptcha(280, 90)` draws its 42-56 point text on the larger canvas (RenderStyle.canvases);
    a size in `sizes` scales the text with the height. Same image size, text 1.5 times as tall."""
    import io

    import numpy as np
    from PIL import Image

    plain = (
        '"rotate": [0, 0], "warp_dx": [0, 0], "warp_dy": [0, 0], "offset_dy": [0, 0], "dots": [0, 0], "curves": [0, 0]'
    )

    def text_heights(size_fields: str) -> list[int]:
        greys = _greys(f'{{"preset": "library", {size_fields}, {plain}}}', 8)
        assert all(g.shape == (90, 280) for g in greys)
        rows = [np.flatnonzero((g < 200).any(axis=1)) for g in greys]
        return [int(r[-1] - r[0]) + 1 for r in rows]

    canvas = np.median(text_heights('"canvases": [[280, 90]], "canvas_share": 1'))
    scaled = np.median(text_heights('"sizes": [[280, 90]]'))
    assert 1.35 <= scaled / canvas <= 1.65, (scaled, canvas)
    # canvas_share of the images on a canvas, the rest at a size (the config's, when there are none).
    style = '{"preset": "library", "canvases": [[240, 84], [132, 50]], "canvas_share": 0.25}'
    drawn = collections.Counter(
        Image.open(io.BytesIO(png)).size
        for png in (CaptchaRenderer(seed=3, style=style).render(i).png for i in range(200))
    )
    assert set(drawn) == {(160, 60), (240, 84), (132, 50)}
    assert 0.15 <= (drawn[(240, 84)] + drawn[(132, 50)]) / 200 <= 0.35, drawn


def test_an_unsmoothed_captcha_is_the_same_drawing_before_the_filter():
    import io

    import numpy as np
    from PIL import Image, ImageFilter

    def rgb(style):
        renderer = CaptchaRenderer(seed=1, style=style)
        return [Image.open(io.BytesIO(renderer.render(i).png)).convert("RGB") for i in range(12)]

    def step(image):  # the mean step between neighbouring pixels: what smoothing takes away
        return np.abs(np.diff(np.asarray(image.convert("L"), int), axis=1)).mean()

    sharp = rgb('{"preset": "library", "unsmoothed_share": 1}')
    smoothed = rgb("library")  # JPEG never: PNG keeps every pixel
    for before, after in zip(sharp, smoothed):
        np.testing.assert_array_equal(np.asarray(before.filter(ImageFilter.SMOOTH)), np.asarray(after))
        assert step(before) > 1.1 * step(after)


def test_curve_width_draws_thick_curves():
    import numpy as np

    style = '{"preset": "library", "ink": [0, 0], "dots": [0, 0], "curves": [2, 2], "glyph_mask": "shape"'
    chars_only = '{"preset": "library", "ink": [0, 0], "dots": [0, 0], "curves": [0, 0], "glyph_mask": "shape"}'
    ink = lambda s: np.mean([(g < 128).mean() for g in _greys(s, 20)])  # noqa: E731
    thin, thick, none = ink(style + "}"), ink(style + ', "curve_width": [5, 5]}'), ink(chars_only)
    assert thick - none > 3 * (thin - none) > 0, (none, thin, thick)


def test_lines_and_ellipses_draw_over_the_text_in_its_ink():
    """Lines and ellipse outlines add ink, at the page's edges too (where text seldom reaches), as
    thick as `line_width` says; a style without them renders exactly as before they existed."""
    import numpy as np

    base = '{"preset": "library", "ink": [0, 0], "dots": [0, 0], "curves": [0, 0], "glyph_mask": "shape"'

    def ink(style: str) -> tuple[float, float]:
        greys = _greys(style, 20)
        edges = [np.concatenate([g[:, :12].ravel(), g[:, -12:].ravel()]) for g in greys]
        return float(np.mean([(g < 128).mean() for g in greys])), float(np.mean([(e < 128).mean() for e in edges]))

    (none, none_edges), (lines, line_edges) = ink(base + "}"), ink(base + ', "lines": [3, 3]}')
    assert lines > 1.1 * none and line_edges > 1.3 * none_edges, (none, lines, none_edges, line_edges)
    thin, thick = (
        ink(base + ', "lines": [2, 2], "line_width": [1, 1]}'),
        ink(base + ', "lines": [2, 2], "line_width": [5, 5]}'),
    )
    assert thick[0] - none > 2.5 * (thin[0] - none) > 0, (none, thin, thick)
    assert ink(base + ', "ellipses": [2, 2]}')[0] > 1.05 * none
    # with JPEG at random, one more random number drawn for the lines would change which are JPEG
    plain = _greys(base + ', "jpeg_probability": 0.5}', 8)
    same = _greys(base + ', "jpeg_probability": 0.5, "lines": [0, 0], "ellipses": [0, 0], "line_width": [4, 4]}', 8)
    assert all((a == b).all() for a, b in zip(plain, same))


@pytest.mark.parametrize("font", sorted(FONTS))
def test_every_font_draws_every_character_its_own_way(font):
    """A font without a glyph draws its 'missing' box (or nothing) for it: every character of the
    alphanumeric charset must be drawn, each differently from the others and from a character the
    font cannot have (a private-use code point)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(FONTS[font], 40)

    def drawn(character: str) -> bytes:
        image = Image.new("L", (60, 60), 0)
        ImageDraw.Draw(image).text((5, 0), character, font=face, fill=255)
        return np.asarray(image).tobytes()

    missing = drawn("\ue000")
    shapes = {c: drawn(c) for c in ALPHANUMERIC}
    assert all(any(shape) for shape in shapes.values()), [c for c, s in shapes.items() if not any(s)]
    assert missing not in shapes.values()
    assert len(set(shapes.values())) == len(ALPHANUMERIC)


def test_held_out_fonts_are_never_trained_on():
    assert not set(STYLES["heldout_fonts"].fonts) & set(STYLES[TRAINING_STYLE].fonts)
    assert STYLES["heldout_geometry"].rotate[1] > STYLES[TRAINING_STYLE].rotate[1]
    for warp in ("warp_dx", "warp_dy"):  # the package's warp reaches (high - low) of the character's size
        (low, high), (train_low, train_high) = (
            getattr(STYLES["heldout_geometry"], warp),
            getattr(STYLES["varied"], warp),
        )
        assert high - low > 1.4 * (train_high - train_low), warp
    assert not set(STYLES["heldout_sizes"].sizes) & set(STYLES[TRAINING_STYLE].sizes)
    # The package's text relative to its canvas (60 / height): held-out canvases draw it both
    # smaller and larger than any size the training draws (whose text scales with the height).
    held_out = [60 / h for _, h in STYLES["library_canvases"].canvases]
    assert min(held_out) < 1 < max(held_out) and STYLES["library_canvases"].canvas_share == 1
    assert not STYLES[TRAINING_STYLE].canvases
    assert all(not STYLES[name].canvases for name in STYLES if name.startswith("heldout_"))


def test_render_style_parses_presets_and_json_overrides():
    assert RenderStyle.parse("library") == RenderStyle()
    custom = RenderStyle.parse('{"rotate": [-45, 45], "sizes": [[200, 70]]}')
    assert custom.rotate == (-45, 45) and custom.sizes == ((200, 70),)
    assert custom.fonts == STYLES[TRAINING_STYLE].fonts  # the rest from the training style
    assert RenderStyle.parse('{"preset": "library", "dots": [0, 0]}').fonts == ("DroidSansMono",)
    assert RenderStyle.parse(custom.to_json()) == custom


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("fancy", "one of"),
        ("[1, 2]", "object"),
        ('{"colour": 1}', "unknown"),
        ('{"fonts": ["Comic Sans"]}', "unknown"),
        ('{"rotate": [10, -10]}', "low <= high"),
        ('{"ink": [0, 240]}', "darker"),
        ('{"jpeg_quality": [0, 50]}', "1-100"),
        ('{"sizes": [[8, 8]]}', "16x16"),
        ('{"sizes": [[100000, 100000]]}', "1024x1024"),  # ten gigapixels: a Beam worker died after a minute
        ('{"canvases": [[8, 8]], "canvas_share": 1}', "canvases must be"),
        ('{"canvases": [[200, 80, 3]], "canvas_share": 1}', "pairs"),
        ('{"preset": "library", "canvas_share": 0.5}', "canvas_share"),
        ('{"preset": "library", "canvases": [[200, 80]]}', "canvas_share"),
        ('{"canvas_share": 1.5}', "canvas_share"),
        ('{"preset": "nope"}', "unknown"),
        ('{"preset": 3}', "unknown"),
        ('{"glyph_mask": "alpha"}', "glyph_mask"),
        ('{"text_opacity": [0, 1]}', "text_opacity"),
        ('{"curve_width": [0, 2]}', "curve_width"),
        ('{"faint_share": 1.5}', "faint_share"),
        ('{"upright_share": -0.1}', "upright_share"),
        ('{"unsmoothed_share": 2}', "unsmoothed_share"),
        ('{"perspective_share": 2}', "perspective_share"),
        ('{"perspective": [0.3, 0.1]}', "low <= high"),
        ('{"lines": [-1, 2]}', "lines"),
        ('{"ellipses": [2, 1]}', "low <= high"),
        ('{"line_width": [0, 2]}', "line_width"),
        ('{"size_by": "pixels"}', "size_by"),
        ('{"preset": "library", "faint_share": 0.2}', "glyph_mask 'shape'"),
    ],
)
def test_render_style_rejects_nonsense(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        RenderStyle.parse(text)


def test_unseeded_rendering_still_varies():
    renderer = CaptchaRenderer()
    assert renderer.render_text("1234") != renderer.render_text("1234")


@pytest.mark.parametrize("bad", [dict(charset=""), dict(charset="aab"), dict(length=0), dict(width=4)])
def test_captcha_config_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        CaptchaConfig(**bad)


def test_split_by_key_hash_is_stable_and_roughly_proportional():
    splits = SplitConfig.parse("train:8,eval:1,test:1")
    keys = [f"k{i}" for i in range(5000)]
    first = [splits.index_for(k) for k in keys]
    assert first == [SplitConfig.parse("train:8,eval:1,test:1").index_for(k) for k in keys]
    counts = collections.Counter(first)
    assert 0.77 < counts[0] / 5000 < 0.83
    assert 0.08 < counts[1] / 5000 < 0.12


@pytest.mark.parametrize("text", ["train", "train:0", "train:8,train:2", "a:b", ""])
def test_split_config_rejects_malformed_text(text):
    with pytest.raises(ValueError):
        SplitConfig.parse(text)


def _captcha_contents(artifact):
    return {
        split: sorted(
            (feature_values(e, "label")[0], feature_values(e, "image")[0]) for e in read_examples(artifact, split)
        )
        for split in artifact.split_names
    }


def test_captcha_example_gen_is_deterministic_and_splits_by_key(tmp_path):
    gen = CaptchaExampleGen(num_examples=60, seed=3)
    first = run_components(tmp_path / "a", [gen]).outputs("CaptchaExampleGen", "examples")[0]
    # Another store, two Beam workers: the same examples in the same splits.
    second = run_components(
        tmp_path / "b",
        [CaptchaExampleGen(num_examples=60, seed=3)],
        beam_args=["--direct_num_workers=2", "--direct_running_mode=multi_threading"],
    ).outputs("CaptchaExampleGen", "examples")[0]
    assert first.split_names == ["train", "eval", "test"]
    contents = _captcha_contents(first)
    assert contents == _captcha_contents(second)
    assert sum(len(v) for v in contents.values()) == 60
    assert first.get("num_examples") == 60
    # Each example sits in the split its key hashes to.
    splits = SplitConfig.parse("train:8,eval:1,test:1")
    renderer = CaptchaRenderer(seed=3)
    expected = collections.defaultdict(list)
    for i in range(60):
        captcha = renderer.render(i)
        expected[splits.names[splits.index_for(captcha.key)]].append((captcha.text.encode(), captcha.png))
    assert {k: sorted(v) for k, v in expected.items()} == {k: v for k, v in contents.items() if v}


def test_csv_without_header_takes_column_names_from_the_schema(tmp_path, shared_data):
    path = os.path.join(shared_data, "house_price", "data1.csv")
    result = run_components(tmp_path, [CsvExampleGen(input_path=path, schema_path=HOUSE_SCHEMA)])
    [examples] = result.outputs("CsvExampleGen", "examples")
    rows = [e for split in examples.split_names for e in read_examples(examples, split)]
    assert len(rows) == 47
    with open(path) as f:
        first_line = [float(v) for v in f.readline().split(",")]
    as_tuples = {
        (feature_values(e, "area")[0], feature_values(e, "bedrooms")[0], feature_values(e, "price")[0]) for e in rows
    }
    assert tuple(first_line) in as_tuples
    # The schema types the columns: area and price FLOAT, bedrooms INT.
    example = rows[0]
    assert example.features.feature["area"].WhichOneof("kind") == "float_list"
    assert example.features.feature["bedrooms"].WhichOneof("kind") == "int64_list"


def test_csv_with_header_and_no_schema_infers_types(tmp_path):
    path = tmp_path / "cities.csv"
    path.write_text("city,rooms,size\nParis,3,70.5\nLyon,2,55\nNice,,40\n")
    result = run_components(tmp_path, [CsvExampleGen(input_path=str(path), splits="all:1")])
    [examples] = result.outputs("CsvExampleGen", "examples")
    rows = {feature_values(e, "city")[0]: e for e in read_examples(examples, "all")}
    assert set(rows) == {b"Paris", b"Lyon", b"Nice"}
    assert feature_values(rows[b"Lyon"], "size") == [55.0]  # a column with 70.5 is FLOAT throughout
    assert feature_values(rows[b"Paris"], "rooms") == [3]
    assert "rooms" not in rows[b"Nice"].features.feature  # an empty cell is a missing value


def test_a_byte_order_mark_is_not_part_of_the_first_column_or_value(tmp_path):
    header = tmp_path / "header.csv"
    header.write_bytes(b"\xef\xbb\xbfcity,rooms\nParis,3\nLyon,2\n")
    bare = tmp_path / "bare.csv"
    bare.write_bytes(b"\xef\xbb\xbf2104,3,399900\n1600,3,329900\n")
    result = run_components(
        tmp_path,
        [
            CsvExampleGen(id="Header", input_path=str(header), splits="all:1"),
            CsvExampleGen(id="Bare", input_path=str(bare), schema_path=HOUSE_SCHEMA, splits="all:1"),
        ],
    )
    [examples] = result.outputs("Header", "examples")
    rows = read_examples(examples, "all")
    assert sorted(feature_values(e, "city")[0] for e in rows) == [b"Lyon", b"Paris"]
    assert all(feature_values(e, "rooms") for e in rows)  # typed INT: no "\ufeffcity" column
    [examples] = result.outputs("Bare", "examples")
    areas = sorted(feature_values(e, "area")[0] for e in read_examples(examples, "all"))
    assert areas == [1600.0, 2104.0]  # a FLOAT, not the string "\ufeff2104"


def test_csv_with_a_short_row_fails_with_the_row_in_the_message(tmp_path):
    from pipelines.runner import ComponentFailed

    path = tmp_path / "short.csv"
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(ComponentFailed, match="row has 1 fields, expected 2"):
        run_components(tmp_path, [CsvExampleGen(input_path=str(path))])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"2104,3,399900\n1600,3,32\xe99\n", r"latin.csv: a line is not UTF-8 text \(at byte 9: b'1600,3,32\\xe99'\)"),
        (b"\xe8\xef,3\n", r"latin.csv: line 1 is not UTF-8 text \(at byte 0"),
    ],
)
def test_a_line_that_is_not_utf8_fails_with_the_file_and_its_bytes(tmp_path, content, message):
    """Python's UnicodeDecodeError named neither the file nor the line ("position 1: invalid continuation byte")."""
    from pipelines.runner import ComponentFailed

    path = tmp_path / "latin.csv"
    path.write_bytes(content)
    with pytest.raises(ComponentFailed, match=message):
        run_components(tmp_path, [CsvExampleGen(input_path=str(path), schema_path=HOUSE_SCHEMA, splits="all:1")])


def test_a_header_naming_a_column_twice_is_refused_before_any_example_is_written(tmp_path):
    """Without a schema the second "city" silently replaced the first in every example; with the
    house-price schema the Beam job failed with "Value out of range: -1"."""
    from pipelines.runner import ComponentFailed

    path = tmp_path / "twice.csv"
    path.write_text("city,city,rooms\nParis,Lyon,3\n")
    with pytest.raises(ComponentFailed, match="the header names city more than once"):
        run_components(tmp_path, [CsvExampleGen(input_path=str(path), splits="all:1")])


def _write_png(path, text):
    with open(path, "wb") as f:
        f.write(CaptchaRenderer(seed=1).render_text(text))


def test_a_file_named_as_an_image_that_is_not_one_fails_with_its_name(tmp_path):
    """Before: the run failed in Transform, with TensorFlow's "Fetching the values for the following
    Tensor keys" and no file name."""
    from pipelines.runner import ComponentFailed

    root = tmp_path / "images"
    (root / "7").mkdir(parents=True)
    _write_png(root / "7" / "good.png", "7")
    (root / "7" / "bad.png").write_bytes(b"this is not a png")
    with pytest.raises(ComponentFailed, match=r"7/bad.png: not a PNG, JPEG, GIF or BMP image"):
        run_components(tmp_path, [ImageExampleGen(input_path=str(root))])


def test_a_fifo_a_folder_or_an_outsize_file_named_as_an_image_is_refused_by_name(tmp_path, monkeypatch):
    """A FIFO named x.png held the ExampleGen until its Beam job's deadline (30 minutes); a folder
    failed with TensorFlow's read error; any file was read whole into a worker's memory."""
    from components.example_gen import image_source

    fifo, folder, big = tmp_path / "1234.png", tmp_path / "5678.png", tmp_path / "9012.png"
    os.mkfifo(fifo)
    folder.mkdir()
    _write_png(big, "9012")
    for path in (fifo, folder):
        with pytest.raises(image_source.NotAnImage, match=f"{path.name}: not a regular file"):
            image_source.read_image(str(path))
    monkeypatch.setattr(image_source, "MAX_IMAGE_FILE_BYTES", 100)
    with pytest.raises(
        image_source.NotAnImage, match=r"9012.png: [\d,]+ bytes; image files over 100 bytes are refused"
    ):
        image_source.read_image(str(big))


@pytest.mark.parametrize("layout", ["files", "folders"])
def test_image_folder_in_both_layouts(tmp_path, layout):
    root = tmp_path / "images"
    root.mkdir()
    labels = ["1234", "5678", "9012"]
    for label in labels:
        if layout == "files":
            _write_png(root / f"{label}.png", label)
        else:
            (root / label).mkdir()
            _write_png(root / label / "a.png", label)
            _write_png(root / label / "b.png", label)
    (root / "notes.txt").write_text("not an image")
    result = run_components(tmp_path, [ImageExampleGen(input_path=str(root))])
    [examples] = result.outputs("ImageExampleGen", "examples")
    rows = [e for split in examples.split_names for e in read_examples(examples, split)]
    found = collections.Counter(feature_values(e, "label")[0].decode() for e in rows)
    per_label = 1 if layout == "files" else 2
    assert found == {label: per_label for label in labels}
    assert all(feature_values(e, "image")[0].startswith(b"\x89PNG") for e in rows)


def test_an_image_cut_short_fails_the_example_gen_with_its_name(tmp_path):
    """A PNG whose first bytes are right but whose data stops (a truncated download) passed the check
    of its first bytes and failed the Transform with "Fetching the values for the following Tensor
    keys: {'label', 'image'}" and no file name."""
    from pipelines.runner import ComponentFailed

    root = tmp_path / "images"
    (root / "3").mkdir(parents=True)
    _write_png(root / "3" / "good.png", "3")
    (root / "3" / "cut.png").write_bytes((root / "3" / "good.png").read_bytes()[:60])
    with pytest.raises(ComponentFailed, match=r"3/cut.png: a PNG file that cannot be decoded \(.*PNG.*; 60 bytes\)"):
        run_components(tmp_path, [ImageExampleGen(input_path=str(root))])


def test_an_image_claiming_more_pixels_than_the_graphs_take_is_not_decoded_to_be_checked(tmp_path, monkeypatch):
    """Decoding every file to check it must not make ExampleGen the victim of a pixel bomb: a few kB of
    PNG claiming 16000x16000 would take 768 MB. Such a file is left to the graphs' header check."""
    import io

    import tensorflow as tf
    from PIL import Image

    from components.example_gen.image_source import read_image

    path = tmp_path / "big.png"
    Image.new("L", (5000, 5000)).save(path)  # 25 Mpx, over the 20 Mpx limit
    small = tmp_path / "small.png"
    _write_png(small, "1")
    decoded = []
    real = tf.io.decode_image
    monkeypatch.setattr(tf.io, "decode_image", lambda data, **kw: decoded.append(len(data)) or real(data, **kw))
    assert read_image(str(path)) == path.read_bytes()
    assert read_image(str(small)) == small.read_bytes()
    assert decoded == [small.stat().st_size]  # only the small one was decoded
    assert Image.open(io.BytesIO(path.read_bytes())).size == (5000, 5000)
