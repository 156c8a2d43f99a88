"""Robustness sets: the captcha model on renderings its training never saw, beside a fresh
sample of the ones it did.

    python -m bench.robustness [--model DIR] [--per-set 1000] [--sets library,heldout_fonts,...] [--factors]
                               [--style NAME=JSON ...]

`--model` is a SavedModel folder (default: the newest version under serving_models/captcha,
which `make pipeline` pushes). Each set is `--per-set` captchas rendered with one preset of
components/example_gen/captcha_source.STYLES at a seed the pipeline never uses, and `wheezy`
is drawn by another generator altogether (wheezy.captcha 3.2.2, the library `captcha` was
derived from, with its documented drawing chain: Bezier curves, its own warp, rotation,
offset and noise, characters squeezed together, in a held-out bold monospace font), as are
`claptcha`, `captchagen`, `flask_simple` and `multicolor` (four more generators from PyPI, see
OUTSIDE below), and `inverted` is `varied` with every colour inverted (light text on a dark
page); per set it reports full-string and per-character accuracy, the share the model
`accepted` and their accuracy, the expected calibration error and the commonest confusions
("true->read").

`--factors` takes each held-out preset apart instead: one set per way it departs from `varied`
(`heldout_geometry:overlap` changes only the overlap, `heldout_fonts:cmtt10` draws only that
font), so that a set below its goal says which departure costs the accuracy; and wheezy once
without each of its steps (`wheezy:without_warp`), which says what of it the model misreads.

`--style NAME=JSON` (repeatable) adds a set of your own: a RenderStyle as `render_style` takes
it, a JSON object of fields over a preset, e.g. `--style 'upright={"preset": "library",
"upright_share": 1}'` scores the package's renderings with no character rotated.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

from bench.common import record

# Generators on PyPI that nobody here controls (the dev extras pin them): what the issue's ">= 0.95
# on other generators" is measured with. Each draws 4 digits its own way:
#   wheezy 3.2.2 (wheezy.captcha, its README's example): Bezier curves, its own warp, rotation,
#     offset and noise, characters squeezed together; DejaVu Sans Mono Bold (held out).
#   claptcha 0.3.3: each character warped through a random quadrilateral that also shrinks it
#     (by up to 0.7 of its size per corner), one thick line from edge to edge; DejaVu Sans.
#   captchagen 0.1.0 (CaptchaGen): rotation to 25 degrees, a random dark colour per character,
#     200 coloured dots and 8 coloured lines; DejaVu Sans, Serif and Sans Mono.
#   flask-simple-captcha 5.5.5: white Roboto Mono on black at random heights, 8 lines and 4
#     ellipses as thick as the strokes, JPEG.
#   multicolorcaptcha 1.2.0: ~60 fonts of its own, each digit in its own cell, rotated to 55
#     degrees, on a random background colour (digits only).
OUTSIDE = ("wheezy", "claptcha", "captchagen", "flask_simple", "multicolor")
SETS = (
    "varied",
    "library",
    "heldout_fonts",
    "heldout_geometry",
    "heldout_sizes",
    "library_canvases",
    "heldout_noise",
    "inverted",
    *OUTSIDE,
)
SEED = 90_210  # the pipeline renders with seed 42: no index here is one it trained on
# The goals: >= 0.99 on the training family, >= 0.97 on every held-out rendering, >= 0.95
# on generators nobody here controls.
GOAL = {"varied": 0.99, **{name: 0.95 for name in OUTSIDE}}


def latest_version(base: str) -> str | None:
    versions = sorted((int(v) for v in os.listdir(base) if v.isdigit()), reverse=True) if os.path.isdir(base) else []
    return os.path.join(base, str(versions[0])) if versions else None


# wheezy.captcha's drawing steps, in its README's order: per character, then over the image.
WHEEZY_CHARACTER_STEPS = ("warp", "rotate", "offset")
WHEEZY_IMAGE_STEPS = ("curve", "noise", "smooth")


class OutsideRenderer:
    """Captchas from one of the OUTSIDE generators, seeded per index like ours (they all draw
    from the random module, whose state is kept around each drawing). `without`: wheezy's
    steps to leave out (the `wheezy:without_<step>` factor sets)."""

    def __init__(self, generator: str, charset: str, length: int, without: tuple[str, ...] = ()) -> None:
        if generator not in OUTSIDE:
            raise ValueError(f"unknown generator {generator!r}; choose from {OUTSIDE}")
        if generator == "multicolor" and (charset != "0123456789" or length != 4):
            raise ValueError("multicolorcaptcha draws 4 digits only")
        unknown = set(without) - ({*WHEEZY_CHARACTER_STEPS, *WHEEZY_IMAGE_STEPS} if generator == "wheezy" else set())
        if unknown:
            raise ValueError(f"{generator} has no step(s) {sorted(unknown)} to leave out")
        self.generator, self.charset, self.length, self.without = generator, charset, length, without
        self._draw = getattr(self, f"_{generator}")()

    def _wheezy(self):
        """wheezy.captcha's documented example (its README)."""
        from wheezy.captcha import image as w

        from components.example_gen.captcha_source import FONTS

        per_character = [getattr(w, step)() for step in WHEEZY_CHARACTER_STEPS if step not in self.without]
        return w.captcha(
            width=200,
            height=75,
            drawings=[
                w.background(),
                w.text(fonts=[FONTS["DejaVuSansMono-Bold"]], drawings=per_character),
                *(getattr(w, step)() for step in WHEEZY_IMAGE_STEPS if step not in self.without),
            ],
        )

    def _claptcha(self):
        from claptcha import Claptcha
        from PIL import ImageFont

        from components.example_gen.captcha_source import FONTS

        def draw(text: str):
            # claptcha 0.3.3 measures text with FreeTypeFont.getsize, which Pillow 10 removed:
            # given back (from getbbox, what it returned) while it draws.
            ImageFont.FreeTypeFont.getsize = lambda font, t, *a, **k: font.getbbox(t)[2:]
            try:
                return Claptcha(text, FONTS["DejaVuSans"], (200, 80)).image[1]
            finally:
                del ImageFont.FreeTypeFont.getsize

        return draw

    def _captchagen(self):
        import tempfile

        from CaptchaGen.CaptchaGen import CaptchaConfig, CaptchaGenerator

        from components.example_gen.captcha_source import FONTS

        self._fonts = tempfile.TemporaryDirectory(prefix="captchagen-fonts-")  # it takes a folder's every .ttf
        for name in ("DejaVuSans", "DejaVuSerif", "DejaVuSansMono"):
            os.symlink(FONTS[name], os.path.join(self._fonts.name, f"{name}.ttf"))
        config = CaptchaConfig(min_len=self.length, max_len=self.length, rotate=True, noise=True, random_color=True)
        generator = CaptchaGenerator(self._fonts.name, config)

        def draw(text: str):
            generator._random_text = lambda: text  # noqa: SLF001 - our text, its drawing
            return generator.generate()[0]

        return draw

    def _flask_simple(self):
        import glob
        import random

        import flask_simple_captcha
        from flask_simple_captcha.img import create_text_img

        fonts = sorted(glob.glob(os.path.join(os.path.dirname(flask_simple_captcha.__file__), "fonts", "*.ttf")))
        return lambda text: create_text_img(text, random.choice(fonts))

    def _multicolor(self):
        from multicolorcaptcha import CaptchaGenerator

        generator = CaptchaGenerator(0)

        def draw(text: str):  # it picks its own digits: the text comes back with the image
            captcha = generator.gen_captcha_image(difficult_level=0, chars_mode="nums", margin=False)
            return captcha["characters"], captcha["image"]

        return draw

    def render(self, index: int):
        import io
        import random

        from components.example_gen.captcha_source import Captcha

        rng = random.Random(f"{self.generator}:{SEED}:{index}")
        text = "".join(rng.choice(self.charset) for _ in range(self.length))
        state = random.getstate()
        random.seed(f"{self.generator}-draw:{SEED}:{index}")
        try:
            drawn = self._draw(text)
        finally:
            random.setstate(state)
        text, image = drawn if isinstance(drawn, tuple) else (text, drawn)
        out = io.BytesIO()
        if self.generator == "flask_simple":  # it serves JPEG (quality 85) by default
            image.convert("RGB").save(out, format="JPEG", quality=85)
        else:
            image.convert("RGB").save(out, format="PNG")
        return Captcha(key=str(index), text=text, png=out.getvalue())


def inverted_png(png: bytes) -> bytes:
    """The image with every colour inverted, as a PNG."""
    import io

    from PIL import Image, ImageOps

    out = io.BytesIO()
    ImageOps.invert(Image.open(io.BytesIO(png)).convert("RGB")).save(out, format="PNG")
    return out.getvalue()


class InvertedRenderer:
    """Another renderer's captchas with every colour inverted: light text on a dark page, a
    polarity no preset draws (their ink is always darker than their paper)."""

    def __init__(self, renderer) -> None:
        self.renderer = renderer

    def render(self, index: int):
        from components.example_gen.captcha_source import Captcha

        captcha = self.renderer.render(index)
        return Captcha(key=captcha.key, text=captcha.text, png=inverted_png(captcha.png))


def factor_sets() -> dict:
    """Each held-out preset's departures from `varied`, one at a time, as render styles: a set per
    field it changes (`heldout_noise:dots`), a set per font for a font list
    (`heldout_fonts:cmtt10`), and a pair for a field that makes a valid style only with another
    (`heldout_noise:ink+paper`); then wheezy without one of its steps each, as ("wheezy", step)."""
    from components.example_gen.captcha_source import STYLES

    base, sets = STYLES["varied"], {}

    def valid(fields: dict):
        try:
            return dataclasses.replace(base, **fields)
        except ValueError:  # e.g. paper as dark as the training's ink
            return None

    for name, style in STYLES.items():
        if not name.startswith("heldout_"):
            continue
        changed = {f.name: getattr(style, f.name) for f in dataclasses.fields(style)}
        changed = {k: v for k, v in changed.items() if v != getattr(base, k)}
        for font in changed.pop("fonts", ()):
            sets[f"{name}:{font}"] = dataclasses.replace(base, fonts=(font,))
        for field in changed:  # alone, else with the first partner that makes it a valid style
            groups = [(field,)] + [tuple(sorted((field, other))) for other in changed if other != field]
            found = ((g, valid({k: changed[k] for k in g})) for g in groups)
            group, factor = next(((g, s) for g, s in found if s is not None), (("all",), style))
            sets[f"{name}:{'+'.join(group)}"] = factor
    for step in (*WHEEZY_CHARACTER_STEPS, *WHEEZY_IMAGE_STEPS):  # the other generator, one step left out
        sets[f"wheezy:without_{step}"] = ("wheezy", step)
    return sets


def evaluate_set(serve, style, per_set: int, charset: str, length: int, batch: int = 128) -> dict:
    """`style`: "wheezy", "inverted", a preset's name, a RenderStyle or ("wheezy", step, ...)
    (the values of factor_sets())."""
    import tensorflow as tf

    from components.example_gen.captcha_source import CaptchaConfig, CaptchaRenderer
    from pipelines.captcha.evaluation import Answers

    config = CaptchaConfig(charset=charset, length=length)
    if isinstance(style, tuple):  # ("wheezy", step, ...): wheezy without those steps
        renderer = OutsideRenderer("wheezy", charset, length, without=style[1:])
    elif style in OUTSIDE:
        renderer = OutsideRenderer(style, charset, length)
    elif style == "inverted":
        renderer = InvertedRenderer(CaptchaRenderer(config, seed=SEED, style="varied"))
    else:
        renderer = CaptchaRenderer(config, seed=SEED, style=style)
    answers = Answers()
    for start in range(0, per_set, batch):
        captchas = [renderer.render(i) for i in range(start, min(start + batch, per_set))]
        answers.add([c.text for c in captchas], serve(image_bytes=tf.constant([c.png for c in captchas])))
    return answers.score()


def table(results: dict) -> str:
    rows = [
        "| set | captchas | full-string | per character | accepted | right when accepted | ECE | commonest confusions |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, report in results.items():
        o = report["overall"]
        confusions = ", ".join(f"{pair} ({n})" for pair, n in list(report["confusions"].items())[:4]) or "-"
        accepted = f"{o['accepted_share']:.1%}" if "accepted_share" in o else "-"
        right = f"{o['accepted_accuracy']:.4f}" if "accepted_accuracy" in o else "-"
        rows.append(
            f"| {name} | {o['num_examples']} | {o['full_string_accuracy']:.4f} | {o['character_accuracy']:.4f} | "
            f"{accepted} | {right} | {o['expected_calibration_error']:.4f} | {confusions} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="SavedModel folder (default: newest under serving_models/captcha)")
    parser.add_argument("--per-set", type=int, default=1000)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument(
        "--factors", action="store_true", help="score each held-out preset's departures one at a time (see above)"
    )
    parser.add_argument(
        "--style",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a set of your own: a name, '=', and a render_style JSON object over a preset (repeatable)",
    )
    parser.add_argument("--charset", default="0123456789")
    parser.add_argument("--length", type=int, default=4)
    args = parser.parse_args(argv)
    from components.example_gen.captcha_source import STYLES, RenderStyle

    factors = factor_sets()
    sets = list(factors) if args.factors else [s.strip() for s in args.sets.split(",") if s.strip()]
    for text in args.style:  # custom sets go beside the factor sets, under their own names
        name, _, style = (part.strip() for part in text.partition("="))
        if not name or not style.startswith("{"):
            parser.error(f"--style takes NAME=JSON, e.g. 'upright={{\"upright_share\": 1}}', got {text!r}")
        try:
            factors[name] = RenderStyle.parse(style)
        except (TypeError, ValueError) as error:
            parser.error(f"--style {name}: {error}")
        sets.append(name)
    unknown = [s for s in sets if s not in STYLES and s not in factors and s not in ("inverted", *OUTSIDE)]
    if unknown or args.per_set < 1:
        parser.error(
            f"unknown set(s) {unknown}; choose from {sorted(STYLES) + ['inverted', *OUTSIDE]} or those --factors lists "
            f"({', '.join(factors)}); --per-set must be >= 1"
        )
    model = args.model or latest_version(os.path.join("serving_models", "captcha"))
    if model is None or not os.path.isfile(os.path.join(model, "saved_model.pb")):
        print(
            f"robustness: no captcha model {'at ' + model if model else 'under serving_models/captcha'}: "
            "run `make pipeline` first, or pass --model",
            file=sys.stderr,
        )
        return 1
    import tensorflow as tf

    serve = tf.saved_model.load(model).signatures["serving_default"]
    results = {}
    for name in sets:
        started = time.monotonic()
        results[name] = evaluate_set(serve, factors.get(name, name), args.per_set, args.charset, args.length)
        o = results[name]["overall"]
        print(
            f"  {name}: full-string {o['full_string_accuracy']:.4f}, per character {o['character_accuracy']:.4f} "
            f"({time.monotonic() - started:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
    print(f"model {model}, {args.per_set} captchas per set, seed {SEED}\n")
    print(table(results))
    record(
        "robustness",
        [
            {"model": model, "per_set": args.per_set, "seed": SEED, "set": name, **report}
            for name, report in results.items()
        ],
    )
    floor = {name: GOAL.get(name, 0.97) for name in results}
    missed = [n for n, r in results.items() if r["overall"]["full_string_accuracy"] < floor[n]]
    print(
        f"\ngoal (>= 0.99 on varied, >= 0.95 on wheezy and the outside generators, >= 0.97 elsewhere): "
        f"{'met' if not missed else 'missed on ' + ', '.join(missed)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
