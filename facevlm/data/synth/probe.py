"""`facevlm bench probe`: do the synthetic labels show in the pixels?

A frozen ImageNet MobileNetV2 (timm `mobilenetv2_100`, the `mobilenetv2-imagenet` asset) embeds face
crops; a logistic regression per label is trained on some identities and scored on held-out identities.
A frozen generic backbone plus a linear model can only succeed if the label is visible, and held-out
identities rule out memorising people. Acceptance: eyeglasses >= 90 %, the 7 expressions >= 80 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from facevlm.errors import AssetError

# label -> acceptance threshold (None: reported only)
TASKS: dict[str, float | None] = {
    "Eyeglasses": 0.90,
    "expression": 0.80,
    "sunglasses": None,
    "Smiling": None,
    "Mouth_Slightly_Open": None,
    "Wearing_Hat": None,
    "gender_presentation": None,
    "hair_length": None,
    "skin_tone": None,
}


@dataclass
class ProbeResult:
    task: str
    n_train: int
    n_test: int
    accuracy: float
    majority: float  # accuracy of always answering the most frequent training value
    threshold: float | None


def load_backbone(weights: str = "mobilenetv2-imagenet"):
    """timm mobilenetv2_100 without its classifier (1280-d pooled features), from an asset name, its
    folder, or the .safetensors file."""
    import timm
    from safetensors.torch import load_file

    from facevlm.assets import resolve

    where = Path(resolve(weights))
    file = where / "timm_mobilenetv2_100.safetensors" if where.is_dir() else where
    if not file.is_file():
        raise AssetError(f"{file}: no timm_mobilenetv2_100.safetensors here; run `facevlm assets fetch`")
    model = timm.create_model("mobilenetv2_100", pretrained=False, num_classes=0)
    state = {k: v for k, v in load_file(str(file)).items() if not k.startswith("classifier.")}
    model.load_state_dict(state, strict=True)
    return model.eval()


def features(records: list, model, batch_size: int = 64) -> np.ndarray:
    """Pooled features of each record's face crop (box + 20 % margin, 224 px, ImageNet normalisation)."""
    import torch

    from facevlm.data.store import face_crop

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    out = []
    with torch.inference_mode():
        for i in range(0, len(records), batch_size):
            crops = np.stack([np.asarray(face_crop(r, size=224, margin=0.2)) for r in records[i : i + batch_size]])
            x = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255)
            out.append(model((x - mean) / std).numpy())
    return np.concatenate(out)


def linear_probe(feats: np.ndarray, records: list, test_fraction: float, seed: int) -> list[ProbeResult]:
    """Per task: logistic regression on standardised features, split by identity. The regularisation C
    is chosen by 3-fold cross-validation over training identities only (test identities never seen)."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    idents = sorted({r.identity for r in records})
    rng = np.random.default_rng(seed)
    held = set(rng.choice(idents, size=max(1, int(len(idents) * test_fraction)), replace=False).tolist())
    test = np.array([r.identity in held for r in records])
    results = []
    for task, threshold in TASKS.items():
        y = np.array([r.get(task) or "" for r in records])
        keep = y != ""
        tr, te = keep & ~test, keep & test
        if len(set(y[tr])) < 2 or te.sum() == 0:
            continue
        groups = np.array([r.identity for r in records])[tr]
        if len(set(groups)) >= 3:
            folds = list(GroupKFold(n_splits=3).split(feats[tr], y[tr], groups))
            model = LogisticRegressionCV(
                Cs=[0.02, 0.1, 0.5],
                cv=folds,
                max_iter=3000,
                scoring="accuracy",
                l1_ratios=(0.0,),
                use_legacy_attributes=False,
            )
        else:  # too few identities to cross-validate: a fixed, moderate C
            model = LogisticRegression(C=0.1, max_iter=3000)
        clf = make_pipeline(StandardScaler(), model)
        clf.fit(feats[tr], y[tr])
        values, counts = np.unique(y[tr], return_counts=True)
        majority = float(np.mean(y[te] == values[np.argmax(counts)]))
        acc = float(np.mean(clf.predict(feats[te]) == y[te]))
        results.append(ProbeResult(task, int(tr.sum()), int(te.sum()), acc, majority, threshold))
    return results


@click.command("probe")
@click.option("--n-identities", type=click.IntRange(10), default=300, show_default=True)
@click.option("--per-identity", type=click.IntRange(1), default=6, show_default=True)
@click.option("--size", type=click.IntRange(128, 1024), default=160, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=None, help="Render processes (default: all cores).")
@click.option(
    "--weights",
    default="mobilenetv2-imagenet",
    show_default=True,
    help="Asset name, folder or .safetensors of timm mobilenetv2_100.",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0.05, 0.9),
    default=0.25,
    show_default=True,
    help="Share of identities held out for testing.",
)
def probe_cmd(
    n_identities: int, per_identity: int, size: int, seed: int, workers: int | None, weights: str, test_fraction: float
) -> None:
    """Linear probe on frozen MobileNetV2 features of synthetic renders, held-out identities."""
    import time

    from tqdm import tqdm

    from facevlm.data.synth import SynthConfig, generate

    cfg = SynthConfig(n_identities=n_identities, per_identity=per_identity, size=size, seed=seed)
    start = time.perf_counter()
    records = list(tqdm(generate(cfg, workers), total=len(cfg), desc="render", unit="img"))
    t_render = time.perf_counter() - start
    model = load_backbone(weights)
    start = time.perf_counter()
    feats = features(records, model)
    t_feat = time.perf_counter() - start
    results = linear_probe(feats, records, test_fraction, seed)
    click.echo(
        f"command: facevlm bench probe --n-identities {n_identities} --per-identity {per_identity} "
        f"--size {size} --seed {seed} --test-fraction {test_fraction}"
    )
    click.echo(f"render {t_render:.1f}s, features {t_feat:.1f}s ({len(records)} images)")
    click.echo("| label | train | test (held-out identities) | accuracy | majority baseline | target |")
    click.echo("|---|---|---|---|---|---|")
    failed = []
    for r in results:
        target = (
            "" if r.threshold is None else f">= {r.threshold:.0%} " + ("PASS" if r.accuracy >= r.threshold else "FAIL")
        )
        if r.threshold is not None and r.accuracy < r.threshold:
            failed.append(r.task)
        click.echo(f"| {r.task} | {r.n_train} | {r.n_test} | {r.accuracy:.3f} | {r.majority:.3f} | {target} |")
    click.echo("acceptance: " + ("PASS" if not failed else f"FAIL ({', '.join(failed)})"))
