"""facevlm.image, the one image opener: EXIF orientation, transparency on white, odd modes, limits; and
the same pixels through every entry point (data import and store, face crops, the face pipeline,
FaceCLIP inference, eval, the gateway's decoder) for an EXIF-rotated JPEG and an RGBA PNG."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facevlm.errors import FacevlmError
from facevlm.image import ImageLimits, decode_image, open_image, to_array, to_rgb

# EXIF orientation -> how a camera stores an upright scene under that tag (the inverse of what a viewer
# applies: orientation 6 is shown rotated 90 degrees clockwise, so it is stored rotated counter-clockwise)
STORED = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _scene(w: int = 60, h: int = 40) -> Image.Image:
    """An upright, asymmetric scene of flat blocks (red top-left, green top-right, blue bottom-left)."""
    img = Image.new("RGB", (w, h), (128, 128, 128))
    img.paste(Image.new("RGB", (w // 2, h // 2), (220, 20, 20)), (0, 0))
    img.paste(Image.new("RGB", (w // 2, h // 2), (20, 220, 20)), (w // 2, 0))
    img.paste(Image.new("RGB", (w // 2, h // 2), (20, 20, 220)), (0, h // 2))
    return img


def _encoded(img: Image.Image, fmt: str, orientation: int = 1, **kw) -> bytes:
    """`img` stored as a camera would for `orientation`, with that EXIF tag."""
    stored = img.transpose(STORED[orientation]) if orientation != 1 else img
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, format=fmt, exif=exif.tobytes(), **kw)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(orientation):
    scene = _scene()
    data = _encoded(scene, "PNG", orientation)
    assert Image.open(io.BytesIO(data)).getexif()[0x0112] == orientation
    for src in (data, Image.open(io.BytesIO(data)), {"bytes": data, "path": None}):
        assert np.array_equal(np.asarray(open_image(src)), np.asarray(scene)), (orientation, type(src))
    assert np.array_equal(np.asarray(decode_image(data).image), np.asarray(scene))
    once = open_image(data)
    assert np.array_equal(np.asarray(open_image(once)), np.asarray(scene))  # opening twice never rotates twice


def test_transparency_is_flattened_on_white():
    rgba = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (200, 10, 10, 255))
    rgba.putpixel((2, 0), (0, 0, 0, 128))
    flat = np.asarray(to_rgb(rgba))
    assert flat[0, 0].tolist() == [255, 255, 255] and flat[0, 1].tolist() == [200, 10, 10]
    assert 120 <= flat[0, 2, 0] <= 135  # half-transparent black on white: mid grey, not black
    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (30, 255))
    assert np.asarray(open_image(la)).tolist() == [[[255, 255, 255], [30, 30, 30]]]
    palette = Image.new("P", (2, 1), 0)
    palette.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.info["transparency"] = 0
    buf = io.BytesIO()
    palette.save(buf, format="PNG")
    assert np.asarray(open_image(buf.getvalue())).tolist() == [[[255, 255, 255], [10, 200, 10]]]


def test_sixteen_bit_grey_is_scaled_not_clipped():
    grey = Image.fromarray(np.array([[0, 1000, 2000]], np.uint16))
    buf = io.BytesIO()
    grey.save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode.startswith("I")
    assert np.asarray(open_image(buf.getvalue()))[0, :, 0].tolist() == [0, 127, 255]


def _png_claiming(width: int, height: int) -> bytes:
    """A real 8x8 PNG whose header says `width` x `height` (a decompression bomb's header, cheaply)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


def test_limits_are_checked_before_pixels_are_decoded():
    jpeg = _encoded(_scene(), "JPEG", quality=90)
    with pytest.raises(FacevlmError, match="exceeds the 100-byte image limit") as exc:
        decode_image(jpeg, ImageLimits(max_bytes=100), where="upload")
    assert exc.value.status_code == 413 and str(exc.value).startswith("upload: ")
    with pytest.raises(FacevlmError, match="8000x6000 pixels exceeds the 40000000-pixel limit") as exc:
        decode_image(_png_claiming(8000, 6000), ImageLimits(), where="bomb")
    assert exc.value.status_code == 413
    with pytest.raises(FacevlmError, match="decompression bomb guard") as exc:
        open_image(_png_claiming(50_000, 50_000))  # trusted data still meets PIL's own guard
    assert exc.value.status_code == 413
    with pytest.raises(FacevlmError, match="smaller than 100 pixels a side"):
        open_image(jpeg, limits=ImageLimits(min_side=100))
    assert open_image(jpeg).size == (60, 40)  # trusted local data: no side limit
    with pytest.raises(FacevlmError, match="not a supported image") as exc:
        decode_image(b"%PDF-1.4 not an image")
    assert exc.value.status_code == 415
    with pytest.raises(FacevlmError, match="corrupt or truncated JPEG"):
        open_image(jpeg[: len(jpeg) // 2])
    with pytest.raises(FacevlmError, match="empty image"):
        decode_image(b"")


def test_to_array_forms():
    assert to_array(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert to_array(np.ones((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    assert to_array(np.full((2, 2, 3), 1.0, np.float32)).max() == 255
    with pytest.raises(FacevlmError, match="not an HxW"):
        to_array(np.zeros((4, 5, 2), np.uint8))


# ---------------------------------------------------------------- one image, every entry point
BOX = [20.0, 34.0, 40.0, 60.0]  # a face box at the bottom-right corner of the upright 40x60 photos: its crop
# runs past the border (padding) and, in the PNG, over the transparent band (white, not black)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """An EXIF orientation-6 JPEG (stored 60x40, shown 40x60) and an RGBA PNG with a transparent band,
    in an image folder (`<root>/<class>/<file>`) as a user would import them."""
    root = tmp_path_factory.mktemp("photos")
    (root / "person").mkdir()
    rotated = root / "person" / "rotated.jpg"
    rotated.write_bytes(_encoded(_scene(40, 60), "JPEG", 6, quality=95))
    rgba = _scene(40, 60).convert("RGBA")
    rgba.paste(Image.new("RGBA", (40, 10), (0, 0, 0, 0)), (0, 50))
    rgba.save(root / "person" / "alpha.png")
    return {"root": root, "rotated.jpg": rotated, "alpha.png": root / "person" / "alpha.png"}


@pytest.mark.parametrize("name", ["rotated.jpg", "alpha.png"])
def test_the_one_opener_is_right(photos, name):
    """The reference pixels are upright and flattened on white (not merely self-consistent)."""
    image = np.asarray(open_image(photos[name]), np.int16)
    assert image.shape == (60, 40, 3)  # upright: the JPEG is stored 60 wide, shown 40 wide
    assert np.abs(image[5, 5] - [220, 20, 20]).max() < 12 and np.abs(image[5, 35] - [20, 220, 20]).max() < 12
    if name == "alpha.png":
        assert image[55].min() == 255  # the transparent band is white, not black


@pytest.mark.parametrize("name", ["rotated.jpg", "alpha.png"])
def test_same_pixels_through_every_entry_point(photos, name, tmp_path):
    import torch

    from facevlm.clip import load
    from facevlm.clip.inference import encode_images
    from facevlm.data.adapters import open_source
    from facevlm.data.store import face_crop, iter_records, load_records, save_records
    from facevlm.eval.datasets import from_records
    from facevlm.vision.crop import face_crop as crop_rule
    from facevlm.vision.pipeline import FacePipeline, PipelineConfig

    path = photos[name]
    reference = open_image(path)
    pixels = np.asarray(reference)
    crop = np.asarray(crop_rule(reference, BOX))
    same = np.testing.assert_array_equal

    for src in (str(path), path.read_bytes(), Image.open(path), {"bytes": path.read_bytes(), "path": None}):
        same(np.asarray(open_image(src)), pixels)
    same(np.asarray(decode_image(path.read_bytes(), ImageLimits(), where="upload").image), pixels)  # gateway
    same(to_array(path), pixels)  # what the detector and the aligner are fed

    # data import -> store -> read back: the records, their crops, and `datasets`' own decoding (training)
    imported = [r for r in open_source("imagefolder", photos["root"], "all") if r.id.endswith(name)]
    for record in imported:
        record.box = BOX
    stored = save_records(imported, tmp_path / "ds")
    (record,) = iter_records(load_records(stored))
    same(np.asarray(record.image), pixels)
    same(np.asarray(face_crop(record)), crop)
    from facevlm.schema import from_row

    same(np.asarray(face_crop(from_row(load_records(stored)[0]))), crop)  # what clip.data.CaptionPairs reads
    same(np.asarray(FacePipeline(PipelineConfig(expression=False)).face(path, BOX).crop), crop)
    # eval: an adapter source goes through the same crop
    same(np.asarray(from_records(iter(imported), "photos", "all").images[0]), crop)
    # FaceCLIP inference: a path is opened by the same opener before the preprocess
    clip = load("facevlm-clip-tiny")
    by_path = encode_images(clip.model, clip.preprocess, [path])
    by_tensor = encode_images(clip.model, clip.preprocess, [clip.preprocess(reference)])
    assert torch.equal(by_path, by_tensor)
