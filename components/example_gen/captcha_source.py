"""Deterministic captcha rendering with the `captcha` package, over a family of renderings.

`captcha` 0.7.1 draws every random choice from the `secrets` module, so
seeding `random` changes nothing. `CaptchaRenderer` swaps the module's
`secrets` for a seeded source while it renders one image; each image has its
own seed derived from (seed, index), so any worker renders any index the same
way, byte for byte, in any order.

A `RenderStyle` is the family one renderer draws from: fonts, sizes,
rotation, warp, offsets, spacing, colours, noise, output size and JPEG
re-encoding, each a range sampled per image. `STYLES` names the presets:
`library` is the package as it ships (one font), `varied` is what the
pipeline trains on, and the `heldout_*` ones are rendered only to test a
model on what its training never saw (BENCHMARKS.md, robustness).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import random
import string
import threading

import matplotlib
from captcha import image as captcha_image
from PIL import Image, ImageDraw, ImageFilter, ImageFont

DIGITS = string.digits
ALPHANUMERIC = string.digits + string.ascii_uppercase
# Without the characters most fonts draw alike once warped and rotated: 0 and O, 1 and I (two
# thirds of an alphanumeric model's character errors, BENCHMARKS.md). 32 characters, as captcha
# generators commonly leave them out.
UNAMBIGUOUS = "".join(c for c in ALPHANUMERIC if c not in "0O1I")

# The swap is process-wide: one render at a time per process.
_RENDER_LOCK = threading.Lock()


class _SeededSecrets:
    """The three `secrets` functions `captcha.image` calls, drawn from a seeded RNG."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def randbelow(self, n: int) -> int:
        return self._rng.randrange(n)

    def randbits(self, k: int) -> int:
        return self._rng.getrandbits(k)

    def choice(self, seq):
        return self._rng.choice(seq)


def _uniform(low: float = 0.0, high: float = 1.0) -> float:
    """A float in [low, high) drawn the way captcha 0.7.1 draws one, from whatever source
    `captcha.image.secrets` is while a render runs (the seeded one)."""
    return low + captcha_image.secrets.randbits(32) / (2**32) * (high - low)


# Fonts from pinned PyPI packages, so a fresh clone has them without root: the captcha package's
# one font and the TrueType fonts matplotlib ships (DejaVu, STIX, Computer Modern).
_MPL_FONTS = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
FONTS = {
    "DroidSansMono": os.path.join(captcha_image.DATA_DIR, "DroidSansMono.ttf"),
    **{
        name: os.path.join(_MPL_FONTS, f"{name}.ttf")
        for name in (
            "DejaVuSans",
            "DejaVuSans-Bold",
            "DejaVuSans-Oblique",
            "DejaVuSansMono",
            "DejaVuSansMono-Bold",
            "DejaVuSerif",
            "DejaVuSerif-Bold",
            "DejaVuSerif-Italic",
            "STIXGeneral",
            "STIXGeneralBol",
            "STIXGeneralItalic",
            "cmr10",
            "cmss10",
            "cmtt10",
        )
    },
}

Range = tuple  # (low, high), both inclusive
GLYPH_MASKS = ("brightness", "shape")
SIZE_BY = ("points", "height")
# The largest side a captcha is drawn at: each is a PIL image in a worker's memory, and 100000x100000
# was ten gigapixels that took a Beam worker down after a minute (a 160x60 captcha is the default).
MAX_SIDE = 1024
FAINT_INK_FLOOR = 40  # per channel: pasted through its brightness, such ink is >= 30% opaque


@dataclasses.dataclass(frozen=True)
class RenderStyle:
    """The ranges one renderer samples per image. Sizes are for a 60-pixel-high image and scale with it."""

    fonts: tuple[str, ...] = ("DroidSansMono",)
    font_sizes: tuple[int, ...] = (42, 50, 56)
    # What font_sizes measure. "points": as the package takes them, a font size; the package then
    # draws each character in a box as tall as the bottom of its text box, so the drawn height
    # follows each font's metrics (at 46 points: DejaVu Sans 44 pixels, STIX 50, cmr10 34).
    # "height": that drawn height itself, in pixels at 60 high, the same in every font.
    size_by: str = "points"
    rotate: Range = (-30.0, 30.0)  # degrees, per character
    # The warp moves a character's corners by up to dx (dy) pixels each way. captcha 0.7.1 draws
    # dx = width * U(0, 1) * (high - low) + low: the extent is set by high - low (as a fraction of
    # the character's width or height), and low adds only `low` pixels, not a fraction.
    warp_dx: Range = (0.1, 0.3)
    warp_dy: Range = (0.2, 0.3)
    offset_dx: Range = (0, 4)  # pixels before each character
    offset_dy: Range = (0, 6)
    space_probability: float = 0.5  # a blank glyph before a character
    overlap: Range = (0.25, 0.25)  # how far characters may overlap, fraction of their mean width
    ink: Range = (10, 200)  # per RGB channel
    paper: Range = (238, 255)
    dots: Range = (30, 30)
    dot_width: Range = (3, 3)
    curves: Range = (1, 1)
    # Pixels (at 60 high), per curve. The package draws 1-pixel arcs; other generators strike the
    # text through with a line as thick as its strokes (wheezy.captcha: 4 pixels at 75 high).
    curve_width: Range = (1, 1)
    sizes: tuple[tuple[int, int], ...] = ()  # (width, height) choices; () keeps the config's size
    # Canvases: (width, height) choices drawn with the font sizes and offsets as they are for 60
    # high, as the package draws `ImageCaptcha(width, height)` with its default font sizes: the text
    # smaller on a larger canvas and larger (squeezed to fit its width) on a smaller one.
    # `canvas_share` of the images are drawn on one of them, the rest at one of `sizes`. The default
    # model, trained on scaled sizes alone, reads the package's 280x90, 200x80 and 120x45 captchas
    # at 0.90 ('1' as '7'). Trained with 0.2 or 0.4 of its images on 240x84 and 132x50 canvases, it
    # read them at 0.93-0.94 but the package's 160x60 ones at 0.970 instead of 0.981, so `varied`
    # draws none (BENCHMARKS.md, #14).
    canvases: tuple[tuple[int, int], ...] = ()
    canvas_share: float = 0.0
    jpeg_probability: float = 0.0
    jpeg_quality: Range = (75, 95)
    # How a drawn character is pasted. "brightness": as the package does, through its own grey level,
    # so the darker the ink the fainter the text (ink of luminance 20 is pasted at 15% opacity; one
    # captcha in 15 of the varied family was unreadable that way, BENCHMARKS.md). "shape": through
    # the glyph's alpha, so every ink is pasted whole.
    glyph_mask: str = "brightness"
    # With glyph_mask "shape": how opaque the characters are pasted, sampled per image (faint text
    # whatever the ink's colour). Training on (0.4, 1.0) read worse everywhere (BENCHMARKS.md).
    text_opacity: Range = (1.0, 1.0)
    # With glyph_mask "shape": the share of captchas pasted the package's way instead (through the
    # glyph's brightness: the darker the ink, the fainter the text), their ink kept at
    # FAINT_INK_FLOOR or lighter per channel so the text stays at least 30% opaque and readable.
    faint_share: float = 0.0
    # The share of characters drawn upright. The package draws a rotation from `rotate` for every
    # character, and any angle but 0 resamples the glyph (bilinear, a slight blur); an exact 0 is
    # never drawn from a range, yet Pillow leaves a glyph at 0 degrees untouched and sharp, as
    # generators that do not rotate draw it. A model that never saw one read upright varied
    # captchas at 0.975 and upright DroidSansMono at 0.927 ('1' as '7'; BENCHMARKS.md, #14).
    upright_share: float = 0.0
    # The share of captchas left as drawn: the package passes every image through Pillow's SMOOTH
    # filter, generators that do not leave their edges sharp. Not trained on: a fifth of them in
    # training moved the sharp sets by -0.5 and +1.6 points, within a run's spread (BENCHMARKS.md,
    # #14); `bench.robustness --style 'sharp={"unsmoothed_share": 1}'` scores sharp renderings.
    unsmoothed_share: float = 0.0
    # The share of characters warped a second way after the package's warp: pasted unscaled into a
    # box larger by up to `perspective` of their width and height at each corner, then mapped back
    # to their size through a random quadrilateral, so a character also shrinks and shifts inside
    # its cell (the package stretches the glyph to fill the box first, so its warp only skews), as
    # wheezy's and claptcha's warps do. `varied` trains on 0.15 of characters so warped (with lines
    # and ellipses, below: wheezy 0.900 -> 0.956, BENCHMARKS.md, #14).
    perspective_share: float = 0.0
    perspective: Range = (0.1, 0.3)
    # Straight lines and ellipse outlines in the ink's colour, drawn over the text as other
    # generators clutter it (claptcha strikes the text through from edge to edge,
    # flask-simple-captcha scatters lines and ellipses as thick as its strokes). Each line is,
    # evenly, a strike-through from the left tenth to the right tenth or a line between two points
    # anywhere; `line_width` is in pixels at 60 high, for both.
    lines: Range = (0, 0)
    ellipses: Range = (0, 0)
    line_width: Range = (1, 3)

    def __post_init__(self) -> None:
        unknown = [f for f in self.fonts if f not in FONTS]
        if not self.fonts or unknown:
            raise ValueError(f"fonts must be a non-empty list from {sorted(FONTS)}; unknown: {unknown}")
        if self.size_by not in SIZE_BY:
            raise ValueError(f"size_by must be one of {SIZE_BY}, got {self.size_by!r}")
        if not self.font_sizes or min(self.font_sizes) < 4:
            raise ValueError(f"font_sizes must be sizes of at least 4, got {self.font_sizes}")
        for name in (
            "rotate",
            "warp_dx",
            "warp_dy",
            "offset_dx",
            "offset_dy",
            "overlap",
            "ink",
            "paper",
            "dots",
            "dot_width",
            "curves",
            "curve_width",
            "jpeg_quality",
            "text_opacity",
            "perspective",
            "lines",
            "ellipses",
            "line_width",
        ):
            value = getattr(self, name)
            if len(value) != 2 or value[0] > value[1]:
                raise ValueError(f"{name} must be a (low, high) pair with low <= high, got {value}")
        if (
            min(*self.offset_dx, *self.offset_dy, *self.dots, *self.curves, *self.overlap, *self.lines, *self.ellipses)
            < 0
            or min(self.dot_width[0], self.curve_width[0], self.line_width[0]) < 1
        ):
            raise ValueError(
                "offsets, dots, curves, overlap, lines and ellipses must be >= 0; "
                "dot_width, curve_width and line_width >= 1"
            )
        if not (0 <= self.ink[0] and self.ink[1] < self.paper[0] and self.paper[1] <= 255):
            raise ValueError(f"ink {self.ink} must be darker than paper {self.paper}, both within 0-255")
        shares = (
            self.space_probability,
            self.jpeg_probability,
            self.faint_share,
            self.upright_share,
            self.unsmoothed_share,
            self.perspective_share,
        )
        if not all(0 <= p <= 1 for p in shares):
            raise ValueError(
                "space_probability, jpeg_probability, faint_share, upright_share, unsmoothed_share and "
                "perspective_share must be within 0-1"
            )
        if self.faint_share and (self.glyph_mask != "shape" or self.ink[1] < FAINT_INK_FLOOR):
            raise ValueError(f"faint_share needs glyph_mask 'shape' and ink reaching {FAINT_INK_FLOOR} or lighter")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must be within 1-100, got {self.jpeg_quality}")
        if not 0 < self.text_opacity[0] <= self.text_opacity[1] <= 1:
            raise ValueError(f"text_opacity must be within (0, 1], got {self.text_opacity}")
        if self.glyph_mask not in GLYPH_MASKS:
            raise ValueError(f"glyph_mask must be one of {GLYPH_MASKS}, got {self.glyph_mask!r}")
        if not 0 <= self.canvas_share <= 1 or bool(self.canvas_share) != bool(self.canvases):
            raise ValueError(
                f"canvas_share must be within 0-1, above 0 exactly when there are canvases; got {self.canvas_share} "
                f"with canvases {self.canvases}"
            )
        for name in ("sizes", "canvases"):
            value = getattr(self, name)
            if any(len(size) != 2 or not all(16 <= side <= MAX_SIDE for side in size) for size in value):
                raise ValueError(
                    f"{name} must be (width, height) pairs within 16x16 and {MAX_SIDE}x{MAX_SIDE}, got {value}"
                )

    @classmethod
    def parse(cls, text: str) -> "RenderStyle":
        """A preset's name, or a JSON object of fields over the `varied` preset: '{"rotate": [-45, 45]}'."""
        text = text.strip()
        if text in STYLES:
            return STYLES[text]
        try:
            fields = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"render_style must be one of {sorted(STYLES)} or a JSON object, got {text!r}") from None
        if not isinstance(fields, dict):
            raise ValueError(f"render_style JSON must be an object, got {text!r}")
        preset = fields.pop("preset", TRAINING_STYLE)
        if (
            not isinstance(preset, str)
            or preset not in STYLES
            or fields.keys() - {f.name for f in dataclasses.fields(cls)}
        ):
            raise ValueError(f"unknown render_style fields or preset in {text!r}; presets: {sorted(STYLES)}")
        return dataclasses.replace(STYLES[preset], **{k: _as_tuples(v) for k, v in fields.items()})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def _as_tuples(value):
    """JSON's lists as the tuples a frozen RenderStyle holds (ranges, and lists of sizes)."""
    return tuple(_as_tuples(x) for x in value) if isinstance(value, list) else value


_TRAINING_FONTS = (
    "DroidSansMono",
    "DejaVuSans",
    "DejaVuSans-Bold",
    "DejaVuSansMono",
    "DejaVuSerif",
    "STIXGeneral",
    "cmr10",
)
STYLES = {
    "library": RenderStyle(),
    # What the pipeline trains on: seven fonts, wider geometry than the library's, lighter and
    # darker ink, more or less noise, three output sizes, a third of the images JPEG re-encoded;
    # since 2026-12-02 also other generators' clutter: a second warp for 0.15 of the characters, up
    # to one line and one ellipse. Twice as much (0.3, up to 3 lines) read the outside generators
    # better still but its own test split at 0.944 with half the budget (BENCHMARKS.md, #14).
    "varied": RenderStyle(
        fonts=_TRAINING_FONTS,
        font_sizes=(40, 46, 52, 58),
        rotate=(-35.0, 35.0),
        warp_dx=(0.05, 0.35),
        warp_dy=(0.1, 0.35),
        offset_dx=(0, 6),
        offset_dy=(0, 8),
        overlap=(0.1, 0.3),
        ink=(0, 190),
        paper=(215, 255),
        dots=(10, 50),
        dot_width=(2, 4),
        curves=(0, 2),
        curve_width=(1, 4),
        sizes=((160, 60), (144, 54), (176, 66)),
        jpeg_probability=0.3,
        jpeg_quality=(50, 95),
        glyph_mask="shape",
        faint_share=0.25,
        upright_share=0.1,
        perspective_share=0.15,
        perspective=(0.1, 0.35),
        lines=(0, 1),
        ellipses=(0, 1),
        line_width=(1, 3),
    ),
}
# Never trained on: fonts of other families, and ranges beyond the training ones.
STYLES["heldout_fonts"] = dataclasses.replace(
    STYLES["varied"], fonts=("cmss10", "cmtt10", "DejaVuSerif-Bold", "STIXGeneralItalic", "DejaVuSans-Oblique")
)
STYLES["heldout_geometry"] = dataclasses.replace(
    STYLES["varied"],
    rotate=(-45.0, 45.0),
    # Up to 0.45 of the width and height: 1.5 and 1.8 times the training's strongest warp (see
    # warp_dx: it is high - low that counts; (0.3, 0.45), the range until 2026-12-02, warped less
    # than the training did).
    warp_dx=(0.0, 0.45),
    warp_dy=(0.0, 0.45),
    offset_dy=(4, 12),
    overlap=(0.3, 0.4),
)
STYLES["heldout_sizes"] = dataclasses.replace(
    STYLES["varied"], sizes=((200, 75), (128, 48), (240, 80)), jpeg_probability=1.0, jpeg_quality=(30, 50)
)
STYLES["heldout_noise"] = dataclasses.replace(
    STYLES["varied"], dots=(60, 100), curves=(3, 4), ink=(100, 170), paper=(190, 230)
)
# The package's own renderings (the library preset) on canvases other than its 160x60, its font
# sizes unscaled, as `ImageCaptcha(width, height)` draws them: the text 0.67, 0.75 and 1.33 (squeezed
# to fit) of its size relative to a 60-high canvas.
STYLES["library_canvases"] = dataclasses.replace(
    STYLES["library"], canvases=((280, 90), (200, 80), (120, 45)), canvas_share=1.0
)
TRAINING_STYLE = "varied"


@dataclasses.dataclass(frozen=True)
class CaptchaConfig:
    charset: str = DIGITS
    length: int = 4
    width: int = 160
    height: int = 60

    def __post_init__(self) -> None:
        if not self.charset or len(set(self.charset)) != len(self.charset):
            raise ValueError(f"charset must be non-empty with no repeats, got {self.charset!r}")
        if self.length < 1:
            raise ValueError(f"length must be >= 1, got {self.length}")
        if not (16 <= self.width <= MAX_SIDE and 16 <= self.height <= MAX_SIDE):
            raise ValueError(
                f"image size must be within 16x16 and {MAX_SIDE}x{MAX_SIDE}, got {self.width}x{self.height}"
            )


@dataclasses.dataclass(frozen=True)
class Captcha:
    key: str
    text: str
    png: bytes


@functools.cache
def _drawn_height(font: str) -> int:
    """How tall the package draws a digit of `font` at 100 points: the bottom of its text box
    (captcha 0.7.1's `_draw_character` sizes a character's box so), the tallest digit's."""
    truetype, draw = ImageFont.truetype(FONTS[font], 100), ImageDraw.Draw(Image.new("L", (1, 1)))
    return max(int(draw.multiline_textbbox((1, 1), c, font=truetype)[3]) for c in DIGITS)


class _StyledCaptcha(captcha_image.ImageCaptcha):
    """The package's renderer with a style's ranges instead of its class constants, per image."""

    def __init__(self, style: RenderStyle, width: int, height: int, scale_text: bool = True) -> None:
        scale = height / 60 if scale_text else 1.0  # see RenderStyle.canvases
        sizes = tuple(max(4, round(s * scale)) for s in style.font_sizes)
        super().__init__(width, height, fonts=[FONTS[f] for f in style.fonts], font_sizes=sizes)
        if style.size_by == "height":  # each font at the size that draws its digits `size` pixels tall
            self._truefonts = [
                ImageFont.truetype(FONTS[f], max(4, round(s * 100 / _drawn_height(f))))
                for f in style.fonts
                for s in sizes
            ]
        self.style = style
        self.character_offset_dx = tuple(round(v * scale) for v in style.offset_dx)
        self.character_offset_dy = tuple(round(v * scale) for v in style.offset_dy)
        self.character_rotate = style.rotate
        self.character_warp_dx = style.warp_dx
        self.character_warp_dy = style.warp_dy
        self.word_space_probability = style.space_probability
        self._faint = style.glyph_mask == "brightness"  # this captcha pasted through its brightness; set per draw

    def draw(self, text: str, rng: random.Random) -> Image.Image:
        style = self.style
        self.word_offset_dx = rng.uniform(*style.overlap)
        paper = tuple(rng.randint(*style.paper) for _ in range(3))
        # Only a style that mixes faint captchas in draws for it: the others render as they always did.
        mixed_in = bool(style.faint_share) and rng.random() < style.faint_share
        self._faint = style.glyph_mask == "brightness" or mixed_in
        low = max(style.ink[0], FAINT_INK_FLOOR) if mixed_in else style.ink[0]
        ink = (*(rng.randint(low, style.ink[1]) for _ in range(3)), rng.randint(220, 255))
        image = self.create_captcha_image(text, ink, paper)
        self.create_noise_dots(image, ink, width=rng.randint(*style.dot_width), number=rng.randint(*style.dots))
        for _ in range(rng.randint(*style.curves)):
            if style.curve_width == (1, 1):
                self.create_noise_curve(image, ink)
            else:
                self._thick_curve(image, ink, round(rng.randint(*style.curve_width) * self._height / 60) or 1)
        # A style without lines or ellipses draws no extra random number: its renderings stay as they were.
        if style.lines[1] or style.ellipses[1]:
            self._lines_and_ellipses(image, ink, rng)
        # A style without unsmoothed captchas draws no extra random number: its renderings stay as they were.
        if style.unsmoothed_share and rng.random() < style.unsmoothed_share:
            return image
        return image.filter(ImageFilter.SMOOTH)

    def _draw_character(self, c: str, draw: ImageDraw.ImageDraw, color: tuple) -> Image.Image:
        """The package's character, upright for `upright_share` of them (a style without it draws
        no extra random number, so its renderings stay as they were)."""
        upright = self.style.upright_share and _uniform() < self.style.upright_share
        self.character_rotate = (0.0, 0.0) if upright else self.style.rotate
        glyph = super()._draw_character(c, draw, color)
        share = self.style.perspective_share
        if share and _uniform() < share:
            glyph = self._perspective(glyph, self.style.perspective)
        return glyph

    @staticmethod
    def _perspective(glyph: Image.Image, extent: Range) -> Image.Image:
        """`glyph` pasted unscaled into a larger box, then mapped back to its size through a random
        quadrilateral whose corners move by up to `extent` (a fraction drawn per glyph) of its size."""
        w, h = glyph.size
        fraction = _uniform(*extent)
        x1, x2 = (round(_uniform(-1, 1) * fraction * w) for _ in range(2))
        y1, y2 = (round(_uniform(-1, 1) * fraction * h) for _ in range(2))
        box = Image.new("RGBA", (w + abs(x1) + abs(x2), h + abs(y1) + abs(y2)))
        box.paste(glyph, (abs(x1), abs(y1)))
        bw, bh = box.size
        quad = (x1, y1, -x1, bh - y2, bw + x2, bh + y2, bw - x2, -y1)
        return box.transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)

    def _lines_and_ellipses(self, image: Image.Image, color: tuple, rng: random.Random) -> None:
        style, (w, h) = self.style, image.size
        draw = ImageDraw.Draw(image)

        def thickness() -> int:
            return max(1, round(rng.uniform(*style.line_width) * h / 60))

        for _ in range(rng.randint(*style.lines)):
            if rng.random() < 0.5:  # through the text, edge to edge
                x1, x2 = rng.uniform(0, 0.1 * w), rng.uniform(0.9 * w, w)
            else:
                x1, x2 = rng.uniform(0, w), rng.uniform(0, w)
            draw.line([(x1, rng.uniform(0, h)), (x2, rng.uniform(0, h))], fill=color, width=thickness())
        for _ in range(rng.randint(*style.ellipses)):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            rx, ry = rng.uniform(4, max(4, w / 4)), rng.uniform(4, max(4, h / 4))
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], outline=color, width=thickness())

    @staticmethod
    def _thick_curve(image: Image.Image, color: tuple, width: int) -> None:
        """The package's noise curve (captcha 0.7.1: an arc under the text's middle), `width` pixels thick."""
        secrets = captcha_image.secrets
        w, h = image.size
        x1 = secrets.randbelow(int(w / 5) + 1)
        x2 = secrets.randbelow(w - int(w / 5) + 1) + int(w / 5)
        y1 = secrets.randbelow(h - 2 * int(h / 5) + 1) + int(h / 5)
        y2 = secrets.randbelow(h - y1 - int(h / 5) + 1) + y1
        end = secrets.randbelow(41) + 160
        start = secrets.randbelow(21)
        ImageDraw.Draw(image).arc([x1, y1, x2, y2], start, end, fill=color, width=width)

    def create_captcha_image(self, chars: str, color: tuple, background: tuple) -> Image.Image:
        """The package's (captcha 0.7.1) layout, character by character, with the style's glyph mask."""
        if self._faint:
            return super().create_captcha_image(chars, color, background)
        secrets = captcha_image.secrets  # the seeded source while a render runs
        image = Image.new("RGB", (self._width, self._height), background)
        draw = ImageDraw.Draw(image)
        glyphs = []
        for c in chars:
            if _uniform() > self.word_space_probability:
                glyphs.append(self._draw_character(" ", draw, color))
            glyphs.append(self._draw_character(c, draw, color))
        text_width = sum(glyph.size[0] for glyph in glyphs)
        width = max(text_width, self._width)
        image = image.resize((width, self._height))
        average = int(text_width / len(chars))
        overlap = int(self.word_offset_dx * average)
        offset = int(average * 0.1)
        low, high = self.style.text_opacity
        opacity = _uniform(low, high) if high > low else high
        fade = None if opacity == 1.0 else [int(a * opacity) for a in range(256)]  # one table per captcha
        for glyph in glyphs:
            w, h = glyph.size
            mask = glyph.getchannel("A") if fade is None else glyph.getchannel("A").point(fade)
            image.paste(glyph, (offset, int((self._height - h) / 2)), mask)
            offset = offset + w - secrets.randbelow(overlap + 1)
        return image.resize((self._width, self._height)) if width > self._width else image


class CaptchaRenderer:
    def __init__(
        self, config: CaptchaConfig = CaptchaConfig(), seed: int = 0, style: RenderStyle | str = "library"
    ) -> None:
        self.config = config
        self.seed = seed
        self.style = RenderStyle.parse(style) if isinstance(style, str) else style
        sizes = self.style.sizes or ((config.width, config.height),)
        self._generators = {size: _StyledCaptcha(self.style, *size) for size in sizes}
        self._canvases = {size: _StyledCaptcha(self.style, *size, scale_text=False) for size in self.style.canvases}

    def render(self, index: int) -> Captcha:
        key = f"{self.seed}:{index}"
        rng = random.Random(f"captcha:{key}")
        text = "".join(rng.choice(self.config.charset) for _ in range(self.config.length))
        return Captcha(key=key, text=text, png=self.render_text(text, rng))

    def render_text(self, text: str, rng: random.Random | None = None) -> bytes:
        """Encoded image bytes of `text` (PNG, or JPEG when the style re-encodes); reproducible
        when `rng` is seeded, fresh otherwise."""
        rng = rng or random.Random()
        # A style without canvases draws no extra random number: its renderings stay as they were.
        on_canvas = self.style.canvas_share and rng.random() < self.style.canvas_share
        generators = self._canvases if on_canvas else self._generators
        generator = generators[rng.choice(sorted(generators))]
        with _RENDER_LOCK:
            original = captcha_image.secrets
            captcha_image.secrets = _SeededSecrets(rng)
            try:
                picture = generator.draw(text, rng)
            finally:
                captcha_image.secrets = original
        out = io.BytesIO()
        if rng.random() < self.style.jpeg_probability:
            picture.save(out, format="JPEG", quality=rng.randint(*self.style.jpeg_quality))
        else:
            picture.save(out, format="PNG")
        return out.getvalue()
