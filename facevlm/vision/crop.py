"""The face crop rule: the one function that cuts a face out of a photo for FaceCLIP.

FaceCLIP is trained on these crops (facevlm.clip.data via data.store.face_crop), the gallery embeds
them (index.ingest, index.search), the eval harness scores them (eval.datasets) and the data engine
exports them. A model only works on the crops it was trained on, so there is exactly one rule:

    the detector box grown by `margin` of its width/height on each side, coordinates rounded to whole
    pixels; parts of the region outside the photo are filled black, never clipped away.

Padding rather than clipping keeps the face where training put it: a clipped crop of a face at the
photo edge is off-centre and has another aspect ratio, so the square resize of CLIP's preprocessing
would cut into the face. Black is what PIL's `crop` fills with, which is what every FaceCLIP so far was
trained on. `size` makes the region square around the face centre first (exports, probes), so faces
are never stretched by the resize.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facevlm.errors import FacevlmError

# FaceCLIP's default training margin (facevlm.clip.train_config.DataConfig.crop_margin); a model trained with
# another margin records it, and its gallery must crop with that one.
TRAINING_MARGIN = 0.2


def face_crop(image: Any, box: Sequence[float] | None, margin: float = TRAINING_MARGIN, size: int | None = None) -> Any:
    """The face of `box` in the upright RGB PIL `image` by the rule above; `box=None` means the image
    is already a face crop (returned whole, or centre-cropped to a square and resized with `size`)."""
    from PIL import Image

    if margin < 0:
        raise FacevlmError(f"crop margin: {margin} must be >= 0")
    w, h = image.size
    if box is None:
        if size is None:
            return image
        side = min(w, h)
        x0, y0 = (w - side) / 2, (h - side) / 2
        return image.crop((round(x0), round(y0), round(x0 + side), round(y0 + side))).resize(
            (size, size), Image.Resampling.BICUBIC
        )
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = x1 - x0, y1 - y0
    x0, y0, x1, y1 = x0 - margin * bw, y0 - margin * bh, x1 + margin * bw, y1 + margin * bh
    if size is not None:
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / 2
        x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
    # a degenerate box still gives one pixel, not an error: one bad record must not stop a training run
    crop = image.crop((round(x0), round(y0), max(round(x1), round(x0) + 1), max(round(y1), round(y0) + 1)))
    return crop if size is None else crop.resize((size, size), Image.Resampling.BICUBIC)
