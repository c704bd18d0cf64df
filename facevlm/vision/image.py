"""One conversion for every image a face expert accepts (PIL, numpy, path), so each expert sees the same
uint8 RGB array and the same error for bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError


def as_rgb(image: Any, where: str = "image") -> np.ndarray:
    """Return an HxWx3 uint8 RGB array. numpy inputs are taken as RGB (grey and RGBA are converted);
    float arrays in [0, 1] are scaled to [0, 255]; a str/Path is opened with PIL."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as img:
                return np.asarray(img.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise FacevlmError(f"{image}: not a readable image ({exc})") from None
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise FacevlmError(f"{where}: expected a PIL image, numpy array or path, got {type(image).__name__}")
    array = image
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number):
            raise FacevlmError(f"{where}: array dtype {array.dtype} is not numeric")
        scale = 255.0 if array.size and float(np.nanmax(array)) <= 1.0 else 1.0
        array = np.clip(np.nan_to_num(array.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise FacevlmError(f"{where}: array of shape {image.shape} is not an HxW, HxWx3 or HxWx4 image")
    return np.ascontiguousarray(array)
