"""The one way to open an image: bytes, a path, a PIL image or a stored record image -> upright RGB.

Every entry point (data adapters and store, the face pipeline, FaceCLIP inference, eval, the gallery and
the gateway) opens images here, so the same file gives the same pixels everywhere: EXIF orientation is
applied and transparency is flattened on white (PIL's `convert("RGB")` drops alpha, i.e. flattens on
black, and ignores EXIF).

Untrusted bytes are checked in the cheapest order: size, magic bytes (the declared content type is not
trusted), header dimensions against a pixel limit *before* any pixel is decoded (a 20000x20000 PNG is a
few KB on the wire and 1.2 GB in memory), then a full decode that fails cleanly on truncated or corrupt
data. The result is always an upright RGB image: EXIF orientation applied, CMYK/P/L/I;16 converted,
transparency flattened on white.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facevlm.errors import FacevlmError

# magic prefix -> (format name PIL reports, file extension)
MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "JPEG", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "PNG", "png"),
    (b"GIF87a", "GIF", "gif"),
    (b"GIF89a", "GIF", "gif"),
    (b"BM", "BMP", "bmp"),
    (b"II*\x00", "TIFF", "tif"),
    (b"MM\x00*", "TIFF", "tif"),
)
DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.ASCII
)


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000  # ~ 8000x5000; PIL's own bomb guard is 89M (warn) / 179M (error)
    min_side: int = 8


# Local files and in-memory images: no byte or side limit (a 4x4 test image or a 60 MB scan is fine), but
# PIL's own decompression-bomb guard still applies.
TRUSTED = ImageLimits(max_bytes=1 << 62, max_pixels=Image.MAX_IMAGE_PIXELS or 1 << 62, min_side=1)


@dataclass
class DecodedImage:
    image: Image.Image  # RGB, EXIF-transposed
    data: bytes  # the original bytes (what a gallery stores)
    format: str
    ext: str
    sha256: str


def sniff(data: bytes) -> tuple[str, str]:
    """(PIL format, extension) from magic bytes; FacevlmError 415 for anything else."""
    for magic, fmt, ext in MAGIC:
        if data.startswith(magic):
            return fmt, ext
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", "webp"
    raise FacevlmError(
        "not a supported image (JPEG, PNG, GIF, WebP, BMP or TIFF by its magic bytes)",
        code="unsupported_media_type",
        status_code=415,
    )


def decode_image(data: bytes, limits: ImageLimits = ImageLimits(), where: str = "image") -> DecodedImage:
    """Decode untrusted bytes into an upright RGB image or raise a one-line FacevlmError naming `where`."""
    if not data:
        raise FacevlmError(f"{where}: empty image", code="invalid_image")
    if len(data) > limits.max_bytes:
        raise FacevlmError(
            f"{where}: {len(data)} bytes exceeds the {limits.max_bytes}-byte image limit",
            code="image_too_large",
            status_code=413,
        )
    try:
        fmt, ext = sniff(data)
    except FacevlmError as exc:
        raise FacevlmError(f"{where}: {exc}", code=exc.code, status_code=exc.status_code) from None
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=[fmt])  # reads the header only
            width, height = img.size
            if width * height > limits.max_pixels:
                raise FacevlmError(
                    f"{where}: {width}x{height} pixels exceeds the {limits.max_pixels}-pixel limit "
                    "(decompression bomb guard)",
                    code="image_too_large",
                    status_code=413,
                )
            if min(width, height) < limits.min_side:
                raise FacevlmError(
                    f"{where}: {width}x{height} is smaller than {limits.min_side} pixels a side", code="invalid_image"
                )
            img.seek(0)  # first frame of animations
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = to_rgb(img)
        except FacevlmError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise FacevlmError(
                f"{where}: too many pixels (decompression bomb guard)", code="image_too_large", status_code=413
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
            raise FacevlmError(
                f"{where}: corrupt or truncated {fmt} ({str(exc).splitlines()[0][:120]})", code="invalid_image"
            ) from None
    return DecodedImage(rgb, data, fmt, ext, hashlib.sha256(data).hexdigest())


def open_image(src: Any, limits: ImageLimits | None = None, where: str | None = None) -> Image.Image:
    """An upright RGB PIL image from bytes, a path, a PIL image or a record image ({bytes, path}).

    With `limits` the input is treated as untrusted and checked like an upload (`decode_image`);
    without, local files and in-memory images are trusted but still decoded fully, so a truncated file
    fails here with a one-line FacevlmError instead of later inside a model.
    """
    if isinstance(src, Image.Image):
        return to_rgb(ImageOps.exif_transpose(src))
    if isinstance(src, dict):  # a HF datasets Image value
        if src.get("bytes") is not None:
            src = src["bytes"]
        elif src.get("path"):
            src = Path(src["path"])
        else:
            raise FacevlmError(f"{where or 'image'}: record image has neither bytes nor a path", code="invalid_image")
    if isinstance(src, (str, Path)):
        where = where or str(src)
        try:
            data = Path(src).read_bytes()
        except OSError as exc:
            raise FacevlmError(f"{where}: cannot read ({exc.strerror or exc})", code="invalid_image") from None
    elif isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    else:
        raise FacevlmError(
            f"{where or 'image'}: expected bytes, a path or a PIL image, got {type(src).__name__}", code="invalid_image"
        )
    return decode_image(data, limits or TRUSTED, where or "image").image


def to_array(image: Any, where: str = "image") -> np.ndarray:
    """An HxWx3 uint8 RGB array for the face experts. numpy inputs are taken as RGB (grey and RGBA are
    converted; float arrays in [0, 1] are scaled to [0, 255]); anything else goes through `open_image`."""
    if not isinstance(image, np.ndarray):
        return np.asarray(open_image(image, where=where))
    array = image
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number):
            raise FacevlmError(f"{where}: array dtype {array.dtype} is not numeric", code="invalid_image")
        scale = 255.0 if array.size and float(np.nanmax(array)) <= 1.0 else 1.0
        array = np.clip(np.nan_to_num(array.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise FacevlmError(
            f"{where}: array of shape {image.shape} is not an HxW, HxWx3 or HxWx4 image", code="invalid_image"
        )
    return np.ascontiguousarray(array)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode as RGB; transparency is composited on white (not on black, which `convert` gives)."""
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        return Image.fromarray((arr / top * 255).astype("uint8")).convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = (arr - arr.min()) / ((arr.max() - arr.min()) or 1.0)
        return Image.fromarray((arr * 255).astype("uint8")).convert("RGB")
    return img.convert("RGB")


def parse_data_uri(uri: str, where: str = "image") -> bytes:
    """The bytes of a `data:[mime];base64,...` URI; the mime type is informational (bytes are sniffed)."""
    match = DATA_URI.match(uri)
    if not match or not match.group("b64"):
        raise FacevlmError(f"{where}: expected a base64 data: URI (data:image/png;base64,...)", code="invalid_image")
    payload = uri[match.end() :]
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise FacevlmError(f"{where}: invalid base64 in data: URI", code="invalid_image") from None


def is_data_uri(text: str) -> bool:
    return text.startswith("data:")


def to_data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
