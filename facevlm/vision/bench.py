"""`facevlm bench detect`: the face detectors side by side on the real sample photos.

The sample photos have no box annotations, so "faces found" is a count per photo printed next to the
timing; read it with the demo's contact sheet (`facevlm demo --backend ...`) to tell hits from misses.
Timings are medians over `--repeat` passes after one warm-up pass, per image, detection only (no
landmarks), on the machine's current torch thread setting.
"""

from __future__ import annotations

import statistics
import time

import click

# Thresholds with about the same meaning per backend: ssd is a probability; dlib's are margins where 0
# is dlib's own default decision threshold.
DEFAULT_THRESHOLDS = {"ssd": 0.9, "hog": 0.0, "mmod": 0.0}


@click.command("detect", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--backends", default="ssd,hog,mmod", show_default=True, help="Comma-separated detector backends.")
@click.option("--repeat", type=int, default=3, show_default=True, help="Timed passes over the photos.")
@click.option("--threads", type=int, default=None, help="torch.set_num_threads before timing (ssd).")
def bench_detect(backends: str, repeat: int, threads: int | None) -> None:
    """Faces found and ms/image for each detector backend on the sample photos."""
    import torch

    from facevlm import assets
    from facevlm.image import to_array
    from facevlm.vision.detect import DetectorConfig, FaceDetector

    if threads:
        torch.set_num_threads(threads)
    photos = [(item["file"], to_array(item["path"])) for item in assets.samples("image")]
    click.echo(f"# {len(photos)} sample photos, torch threads {torch.get_num_threads()}, repeat {repeat}")
    click.echo("| backend | threshold | faces found | ms/image (median) | per photo |")
    click.echo("|---|---|---|---|---|")
    for backend in [b.strip() for b in backends.split(",") if b.strip()]:
        threshold = DEFAULT_THRESHOLDS.get(backend, 0.5)
        detector = FaceDetector(DetectorConfig(backend=backend, min_confidence=threshold, landmarks=False))
        counts = [len(detector.detect(image)) for _, image in photos]  # warm-up pass
        times: list[float] = []
        for _ in range(max(1, repeat)):
            for _, image in photos:
                start = time.perf_counter()
                detector.detect(image)
                times.append(time.perf_counter() - start)
        per_photo = ", ".join(f"{name.rsplit('/', 1)[-1]} {n}" for (name, _), n in zip(photos, counts))
        click.echo(f"| {backend} | {threshold} | {sum(counts)} | {1000 * statistics.median(times):.1f} | {per_photo} |")
    click.echo(
        "command: facevlm bench detect "
        + " ".join([f"--backends {backends}", f"--repeat {repeat}"] + ([f"--threads {threads}"] if threads else []))
    )
