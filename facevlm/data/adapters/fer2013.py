"""FER2013 (Goodfellow et al., ICML 2013 challenge) as distributed: one `fer2013.csv`.

Header `emotion,pixels,Usage`; `pixels` is 2304 space-separated grey values (a 48x48 face crop, row
major); `Usage` is `Training`, `PublicTest` or `PrivateTest`, which we map to train / val / test as the
literature does. Emotion ids: 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.
"""

from __future__ import annotations

from collections.abc import Iterator

from facevlm.data.adapters.base import Adapter, ImportSummary, check_split, csv_rows, pil_to_image
from facevlm.schema import FaceRecord

USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
EMOTIONS = {"0": "anger", "1": "disgust", "2": "fear", "3": "happy", "4": "sad", "5": "surprise", "6": "neutral"}
SIDE = 48


class FER2013(Adapter):
    name = "fer2013"
    title = "FER2013"
    licence = (
        "FER2013: research use (ICML 2013 representation-learning challenge, Kaggle terms); images "
        "are web images owned by their copyright holders"
    )
    homepage = "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge"

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        import numpy as np
        from PIL import Image

        check_split(self, split)
        path = self.root if self.root.is_file() else self.find("fer2013.csv", "fer2013/fer2013.csv")
        for where, row in csv_rows(path, ("emotion", "pixels", "Usage"), summary):
            if row["Usage"].strip() != USAGE[split]:
                continue
            emotion = row["emotion"].strip()
            if emotion not in EMOTIONS:
                summary.skip(where, "unknown label value", f"emotion={emotion!r}")
                continue
            try:
                pixels = np.array(row["pixels"].split(), dtype=np.int64)
            except ValueError:
                summary.skip(where, "bad pixel string", row["pixels"][:30])
                continue
            if pixels.size != SIDE * SIDE or pixels.min() < 0 or pixels.max() > 255:
                summary.skip(where, "bad pixel string", f"{pixels.size} values, expected {SIDE * SIDE} in 0..255")
                continue
            image = pil_to_image(Image.fromarray(pixels.reshape(SIDE, SIDE).astype(np.uint8)))
            line = where.rsplit(":", 1)[1]
            record = self.record(f"{int(line):05d}", image, split, meta={"usage": row["Usage"].strip()})
            record.set("expression", EMOTIONS[emotion])
            yield record
