"""Deterministic captcha rendering with the `captcha` package.

`captcha` 0.7.1 draws every random choice from the `secrets` module, so
seeding `random` changes nothing. `CaptchaRenderer` swaps the module's
`secrets` for a seeded source while it renders one image; each image has its
own seed derived from (seed, index), so any worker renders any index the same
way, byte for byte, in any order.
"""
from __future__ import annotations

import dataclasses
import io
import random
import string
import threading

from captcha import image as captcha_image

DIGITS = string.digits
ALPHANUMERIC = string.digits + string.ascii_uppercase

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
        if self.width < 16 or self.height < 16:
            raise ValueError(f"image size must be at least 16x16, got {self.width}x{self.height}")


@dataclasses.dataclass(frozen=True)
class Captcha:
    key: str
    text: str
    png: bytes


class CaptchaRenderer:
    def __init__(self, config: CaptchaConfig = CaptchaConfig(), seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self._generator = captcha_image.ImageCaptcha(width=config.width, height=config.height)

    def render(self, index: int) -> Captcha:
        key = f"{self.seed}:{index}"
        rng = random.Random(f"captcha:{key}")
        text = "".join(rng.choice(self.config.charset) for _ in range(self.config.length))
        return Captcha(key=key, text=text, png=self.render_text(text, rng))

    def render_text(self, text: str, rng: random.Random | None = None) -> bytes:
        """PNG bytes of `text`; reproducible when `rng` is seeded, fresh otherwise."""
        rng = rng or random.Random()
        with _RENDER_LOCK:
            original = captcha_image.secrets
            captcha_image.secrets = _SeededSecrets(rng)
            try:
                picture = self._generator.generate_image(text)
            finally:
                captcha_image.secrets = original
        out = io.BytesIO()
        picture.save(out, format="PNG")
        return out.getvalue()
