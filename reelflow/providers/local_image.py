"""The offline image stand-ins: a procedural text-to-image and a keyword-driven Pillow edit.

Not AI models. ``procedural_image`` paints a seeded gradient and shapes with the prompt as a caption;
``edit_image_locally`` applies the Pillow filters named by keywords in an instruction. Both return PNG
bytes and are deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from reelflow.errors import SpecError

MIN_SIDE, MAX_SIDE = 16, 4096
MAX_CAPTION_LINES = 6


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _check_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise SpecError(name, f"must be between {MIN_SIDE} and {MAX_SIDE} pixels, not {value}")


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _gradient(width: int, height: int, rng: random.Random) -> Image.Image:
    mask = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270)),
                                             resample=Image.Resampling.BICUBIC, expand=False)
    mask = mask.resize((width, height), Image.Resampling.BICUBIC)
    return Image.composite(Image.new("RGB", (width, height), _colour(rng)),
                           Image.new("RGB", (width, height), _colour(rng)), mask)


def _shapes(canvas: Image.Image, rng: random.Random) -> Image.Image:
    width, height = canvas.size
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(rng.randint(3, 7)):
        size = rng.uniform(0.1, 0.45) * min(width, height)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
        fill = (*_colour(rng), rng.randint(90, 200))
        shape = rng.choice(("ellipse", "rectangle", "triangle"))
        if shape == "ellipse":
            draw.ellipse(box, fill=fill)
        elif shape == "rectangle":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(cx, box[1]), (box[2], box[3]), (box[0], box[3])], fill=fill)
    return Image.alpha_composite(canvas.convert("RGBA"), layer)


def _wrap(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= max_width:
            lines[-1] = candidate
        else:
            lines.append(word)
    if len(lines) > MAX_CAPTION_LINES:
        lines = [*lines[:MAX_CAPTION_LINES - 1], lines[MAX_CAPTION_LINES - 1] + " …"]
    return lines


def _caption(canvas: Image.Image, prompt: str) -> Image.Image:
    width, height = canvas.size
    font = ImageFont.load_default(size=max(10, min(width, height) // 20))
    margin = max(4, width // 40)
    lines = _wrap(prompt, font, width - 2 * margin)
    line_height = int(font.getbbox("Ag")[3] * 1.25)
    band_height = line_height * len(lines) + 2 * margin
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rectangle((0, height - band_height, width, height), fill=(0, 0, 0, 150))
    for index, line in enumerate(lines):
        draw.text((margin, height - band_height + margin + index * line_height), line, font=font,
                  fill=(255, 255, 255, 255))
    return Image.alpha_composite(canvas, layer)


def procedural_image(prompt: str, width: int, height: int, seed: int) -> bytes:
    """A PNG of ``width`` x ``height``: a gradient and shapes chosen by ``seed``, ``prompt`` as a caption."""
    _check_size(width, height)
    if not prompt.strip():
        raise SpecError("prompt", "is empty; the procedural image draws the prompt as its caption")
    rng = random.Random(seed)
    canvas = _shapes(_gradient(width, height, rng), rng)
    return _png(_caption(canvas, " ".join(prompt.split())).convert("RGB"))


def _vignette(image: Image.Image, _rng: random.Random) -> Image.Image:
    width, height = image.size
    mask = Image.radial_gradient("L").resize((width, height), Image.Resampling.BICUBIC)
    mask = ImageOps.invert(mask).point(lambda v: min(255, int(v * 1.6)))
    return Image.composite(image, Image.new("RGB", image.size, (0, 0, 0)), mask)


def _grain(image: Image.Image, rng: random.Random) -> Image.Image:
    noise = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height)).convert("RGB")
    return Image.blend(image, noise, 0.12)


def _tint(red: float, green: float, blue: float) -> Callable[[Image.Image, random.Random], Image.Image]:
    def apply(image: Image.Image, _rng: random.Random) -> Image.Image:
        r, g, b = image.split()
        scaled = [channel.point(lambda v, k=k: min(255, int(v * k))) for channel, k in
                  ((r, red), (g, green), (b, blue))]
        return Image.merge("RGB", scaled)
    return apply


def _sepia(image: Image.Image, _rng: random.Random) -> Image.Image:
    return ImageOps.colorize(ImageOps.grayscale(image), black=(40, 26, 13), white=(255, 240, 196))


@dataclass(frozen=True)
class Edit:
    name: str
    keywords: tuple[str, ...]
    apply: Callable[[Image.Image, random.Random], Image.Image]


EDITS: tuple[Edit, ...] = (
    Edit("grayscale", ("black and white", "black-and-white", "b&w", "grayscale", "greyscale", "monochrome"),
         lambda im, _: ImageOps.grayscale(im).convert("RGB")),
    Edit("sepia", ("sepia", "old photo"), _sepia),
    Edit("blur", ("blur", "blurry", "blurred", "soft focus"), lambda im, _: im.filter(ImageFilter.GaussianBlur(3))),
    Edit("sharpen", ("sharpen", "sharper", "crisp"),
         lambda im, _: im.filter(ImageFilter.UnsharpMask(radius=2, percent=160))),
    Edit("brighter", ("brighter", "brighten", "lighter"), lambda im, _: ImageEnhance.Brightness(im).enhance(1.35)),
    Edit("darker", ("darker", "darken"), lambda im, _: ImageEnhance.Brightness(im).enhance(0.65)),
    Edit("contrast", ("more contrast", "contrast", "punchy"), lambda im, _: ImageEnhance.Contrast(im).enhance(1.5)),
    Edit("saturate", ("more saturated", "saturate", "vivid", "vibrant"),
         lambda im, _: ImageEnhance.Color(im).enhance(1.6)),
    Edit("warm", ("warm", "warmer", "golden"), _tint(1.12, 1.0, 0.85)),
    Edit("cool", ("cool", "cooler", "colder", "cold"), _tint(0.85, 1.0, 1.15)),
    Edit("invert", ("invert", "inverted", "negative"), lambda im, _: ImageOps.invert(im)),
    Edit("mirror", ("mirror", "mirrored", "flip horizontally", "flip"), lambda im, _: ImageOps.mirror(im)),
    Edit("upside down", ("upside down", "upside-down", "flip vertically"), lambda im, _: ImageOps.flip(im)),
    Edit("posterize", ("posterize", "posterise", "poster"), lambda im, _: ImageOps.posterize(im, 3)),
    Edit("vignette", ("vignette",), _vignette),
    Edit("grain", ("film grain", "grain", "grainy", "noise"), _grain),
)
KEYWORDS: tuple[str, ...] = tuple(keyword for edit in EDITS for keyword in edit.keywords)


def _pattern(keyword: str) -> re.Pattern[str]:
    return re.compile(r"(?<![a-z])" + re.escape(keyword) + r"(?![a-z])")


_MATCHERS = tuple((edit, tuple(_pattern(k) for k in edit.keywords)) for edit in EDITS)


def edits_for(instruction: str) -> list[Edit]:
    """The edits an instruction names, in the order it names them (each once; the longest keyword wins where
    keywords overlap, so "flip vertically" is not also a "flip")."""
    text = " ".join(instruction.lower().split())
    matches = sorted(((m, edit) for edit, patterns in _MATCHERS for p in patterns for m in p.finditer(text)),
                     key=lambda item: (-len(item[0].group()), item[0].start()))
    taken: list[tuple[int, int]] = []
    found: dict[str, tuple[int, Edit]] = {}
    for match, edit in matches:
        if any(match.start() < stop and start < match.end() for start, stop in taken):
            continue
        taken.append((match.start(), match.end()))
        if edit.name not in found or match.start() < found[edit.name][0]:
            found[edit.name] = (match.start(), edit)
    return [edit for _, edit in sorted(found.values(), key=lambda item: item[0])]


def edit_image_locally(image: bytes, instruction: str, seed: int) -> bytes:
    """Apply the Pillow filters the instruction's keywords name (in the order written); PNG bytes out."""
    edits = edits_for(instruction)
    if not edits:
        raise SpecError("prompt", f"the local Pillow edit (not an AI model) found no edit it knows in "
                                  f"{instruction!r}; use one or more of: {', '.join(KEYWORDS)}")
    try:
        with Image.open(io.BytesIO(image)) as opened:
            picture = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, ValueError) as exc:
        raise SpecError("image", f"is not an image Pillow can read ({exc})") from exc
    rng = random.Random(seed)
    for edit in edits:
        picture = edit.apply(picture, rng)
    return _png(picture)
