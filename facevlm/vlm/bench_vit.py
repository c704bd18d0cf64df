"""`facevlm bench vit`: what dropping DINOv2's CLS token costs the converted Idefics3 vision tower.

The conversion (facevlm.vlm.dinov2) is exact except for one thing: Idefics3's tower has no CLS token, so
the patch tokens no longer attend to it. Two measurements on the hand-labelled real faces say how much
that changes: (i) the cosine between each patch feature of DINOv2 as trained (CLS in the sequence) and
of the converted tower (CLS dropped); (ii) a linear probe on mean-pooled patch features, with and
without CLS, for expression / smiling / eyeglasses, cross-validated in folds grouped by identity (the
same person never in train and test), beside the majority answer and DINOv2's own CLS token.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import click
import numpy as np
import torch

from facevlm.vlm.dinov2 import ASSET, fold_to_idefics3, read_dinov2_onnx

# probe name -> attribute of the real set (gt labels only; see data/cards/real.md)
TASKS = {"expression": "expression", "smiling": "Smiling", "eyeglasses": "Eyeglasses"}


def pixel_values(images: Sequence[Any], mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """[N, 3, H, W] float32 model input from same-size RGB PIL images: scaled to 0..1, then normalised."""
    array = np.stack([np.asarray(im, dtype=np.float32) for im in images]) / 255.0
    x = torch.from_numpy(array).permute(0, 3, 1, 2)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def cosine_rows(with_cls: torch.Tensor, without_cls: torch.Tensor) -> list[str]:
    """Markdown rows: cosine per patch token and of the mean-pooled feature, with vs without CLS."""
    per_patch = torch.nn.functional.cosine_similarity(with_cls, without_cls, dim=-1)  # [N, patches]
    pooled = torch.nn.functional.cosine_similarity(with_cls.mean(1), without_cls.mean(1), dim=-1)
    image_means = per_patch.mean(1)
    return [
        "| features compared (with CLS vs without) | mean cosine | 5th percentile | min | worst image (mean) |",
        "|---|---|---|---|---|",
        f"| each patch token ({per_patch.numel()}) | {per_patch.mean():.4f} | "
        f"{per_patch.flatten().quantile(0.05):.4f} | {per_patch.min():.4f} | {image_means.min():.4f} |",
        f"| mean-pooled patches ({len(pooled)}) | {pooled.mean():.4f} | {pooled.quantile(0.05):.4f} | "
        f"{pooled.min():.4f} | {pooled.min():.4f} |",
    ]


def grouped_probe(
    feats: dict[str, np.ndarray], y: np.ndarray, groups: np.ndarray, folds: int, c: float
) -> tuple[float, dict[str, float]]:
    """Out-of-fold accuracy of the majority answer and of a logistic regression (standardised features,
    fixed C) per feature set, in `folds` folds grouped by identity; the same folds for every set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    splits = list(GroupKFold(n_splits=folds).split(y, y, groups))
    majority = np.empty(len(y), dtype=y.dtype)
    for train, test in splits:
        values, counts = np.unique(y[train], return_counts=True)
        majority[test] = values[np.argmax(counts)]
    accuracy = {}
    for name, x in feats.items():
        predicted = np.empty(len(y), dtype=y.dtype)
        for train, test in splits:
            if len(set(y[train])) < 2:  # one class in training: the only possible answer
                predicted[test] = y[train][0]
                continue
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
            predicted[test] = clf.fit(x[train], y[train]).predict(x[test])
        accuracy[name] = float(np.mean(predicted == y))
    return float(np.mean(majority == y)), accuracy


@click.command("vit")
@click.option("--dataset", default="real", show_default=True, help="Stored face dataset (name or path).")
@click.option("--weights", default=ASSET, show_default=True, help="DINOv2 ONNX file, its folder or the asset.")
@click.option("--image-size", type=click.IntRange(14), default=224, show_default=True)
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True, help="Folds grouped by identity.")
@click.option("--c", "c", type=click.FloatRange(min=0, min_open=True), default=0.1, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
def bench_vit(dataset: str, weights: str, image_size: int, folds: int, c: float, batch_size: int) -> None:
    """Cost of dropping DINOv2's CLS token: patch-feature cosine and a grouped linear probe, real faces."""
    from facevlm.data.store import face_crop, iter_records, load_records
    from facevlm.vision.crop import TRAINING_MARGIN

    records = list(iter_records(load_records(dataset)))
    backbone = read_dinov2_onnx(weights)
    tower = fold_to_idefics3(backbone, image_size)
    dino, converted = backbone.model(), tower.model()
    outputs: dict[str, list[torch.Tensor]] = {"cls": [], "with": [], "without": []}
    seconds = {"with": 0.0, "without": 0.0}
    with torch.inference_mode():
        for i in range(0, len(records), batch_size):
            crops = [face_crop(r, size=image_size) for r in records[i : i + batch_size]]
            x = pixel_values(crops, tower.image_mean, tower.image_std)
            start = time.perf_counter()
            full = dino(x).last_hidden_state
            seconds["with"] += time.perf_counter() - start
            start = time.perf_counter()
            outputs["without"].append(converted(x).last_hidden_state)
            seconds["without"] += time.perf_counter() - start
            outputs["cls"].append(full[:, 0])
            outputs["with"].append(full[:, 1:])
    cls, with_cls, without_cls = (torch.cat(outputs[k]) for k in ("cls", "with", "without"))
    feats = {
        "mean patch, with CLS (DINOv2 as trained)": with_cls.mean(1).numpy(),
        "mean patch, without CLS (converted tower)": without_cls.mean(1).numpy(),
        "CLS token (reference)": cls.numpy(),
    }
    click.echo(
        f"command: facevlm bench vit --dataset {dataset} --weights {weights} --image-size {image_size} "
        f"--folds {folds} --c {c} --batch-size {batch_size}"
    )
    n_ids = len({r.identity for r in records})
    click.echo(
        f"# {len(records)} faces, {n_ids} identities ({dataset}); crops {image_size} px, margin {TRAINING_MARGIN}; "
        f"{backbone.source['file']} sha256 {backbone.source['sha256'][:12]}; "
        f"ms/face: with CLS {1000 * seconds['with'] / len(records):.1f}, "
        f"converted {1000 * seconds['without'] / len(records):.1f} ({torch.get_num_threads()} threads)"
    )
    for line in cosine_rows(with_cls, without_cls):
        click.echo(line)
    click.echo("")
    header = f"| probe (gt labels, {folds}-fold grouped by identity, C={c}) | faces | majority | "
    click.echo(header + " | ".join(feats) + " |")
    click.echo("|---|---|---|" + "---|" * len(feats))
    for task, attribute in TASKS.items():
        labelled = [(i, r) for i, r in enumerate(records) if attribute in r.attrs("gt")]
        keep = np.array([i for i, _ in labelled])
        y = np.array([r.attrs("gt")[attribute].value for _, r in labelled])
        groups = np.array([r.identity for _, r in labelled])
        majority, accuracy = grouped_probe({k: v[keep] for k, v in feats.items()}, y, groups, folds, c)
        row = " | ".join(f"{accuracy[k]:.3f}" for k in feats)
        click.echo(f"| {task} ({len(set(y))} classes) | {len(y)} | {majority:.3f} | {row} |")
