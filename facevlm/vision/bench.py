"""The detector side of `facevlm bench detect`: timed detection passes and the sample-photo table.

The sample photos have no box annotations, so "faces found" is a count per photo printed next to the
timing; read it with the demo's contact sheet (`facevlm demo --backend ...`) to tell hits from misses.
Recall against hand-labelled boxes needs the real-photo labels of the data engine, a layer above, so
that mode lives in `facevlm.data.detect_bench` and calls `timed_detect` from here.
Timings are per image, detection only (no landmarks), on the machine's current torch thread setting.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import click

# Each backend at its shipped decision threshold: ssd's is a probability (DetectorConfig's default, chosen
# with `--real`); dlib's are margins where 0 is dlib's own default decision threshold.
DEFAULT_THRESHOLDS = {"ssd": 0.5, "hog": 0.0, "mmod": 0.0}


def timed_detect(detector: Any, arrays: Sequence[Any], repeat: int = 1) -> tuple[list[list[Any]], list[float]]:
    """Detections per image from a warm-up pass, and seconds per image over `repeat` timed passes
    (one image at a time, as a gallery ingest of single uploads pays it). `repeat` 0 times the warm-up
    pass itself (after one untimed call on the first image, which pays for lazy set-up): for slow
    settings, where a second pass costs more than its precision is worth."""
    if repeat == 0 and arrays:
        detector.detect(arrays[0])
    found, times = [], []
    for array in arrays:
        start = time.perf_counter()
        found.append(detector.detect(array))
        times.append(time.perf_counter() - start)
    if repeat > 0:
        times = []
        for _ in range(repeat):
            for array in arrays:
                start = time.perf_counter()
                detector.detect(array)
                times.append(time.perf_counter() - start)
    return found, times


def samples_table(backends: Sequence[str], repeat: int) -> list[str]:
    """Markdown rows: faces found and median ms/image per backend on the `samples` asset's photos."""
    from facevlm import assets
    from facevlm.image import to_array
    from facevlm.vision.detect import DetectorConfig, FaceDetector

    photos = [(item["file"], to_array(item["path"])) for item in assets.samples("image")]
    lines = [
        f"# {len(photos)} sample photos, repeat {repeat}",
        "| backend | threshold | faces found | ms/image (median) | per photo |",
        "|---|---|---|---|---|",
    ]
    for backend in backends:
        threshold = DEFAULT_THRESHOLDS.get(backend, 0.5)
        detector = FaceDetector(DetectorConfig(backend=backend, min_confidence=threshold, landmarks=False))
        found, times = timed_detect(detector, [a for _, a in photos], max(1, repeat))
        counts = [len(f) for f in found]
        per_photo = ", ".join(f"{name.rsplit('/', 1)[-1]} {n}" for (name, _), n in zip(photos, counts))
        lines.append(
            f"| {backend} | {threshold} | {sum(counts)} | {1000 * statistics.median(times):.1f} | {per_photo} |"
        )
    return lines


def echo(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(line)
