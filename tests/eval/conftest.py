"""Fixtures for the benchmark harness: a stored face dataset of generated images with exact labels
and a tiny open_clip architecture, both built at test time (no assets, no other stages' models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
EXPR = ("neutral", "happy", "sad")


def make_records(n_ids: int = 8, per_id: int = 6, seed: int = 0) -> list:
    """Faces whose pixels encode identity (base colour) and expression (a bright band), so a model
    that sees the pixels can beat chance while random embeddings cannot."""
    from PIL import Image

    from facevlm.data.schema import FaceRecord

    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_ids):
        base = rng.integers(40, 200, 3)
        gender = ("feminine", "masculine")[i % 2]
        tone = ("2", "5")[(i // 2) % 2]
        for j in range(per_id):
            e = (i + j) % 3
            arr = np.clip(base + rng.normal(0, 8, (32, 32, 3)), 0, 255)
            arr[8 + 6 * e: 12 + 6 * e] = 250
            rec = FaceRecord(id=f"t/{i}-{j}", image=Image.fromarray(arr.astype(np.uint8)), source="test",
                             licence="CC0", identity=f"id{i}", split="train" if j < per_id // 2 else "test",
                             captions=[f"a photo of a {EXPR[e]} person"])
            rec.set("expression", EXPR[e])
            rec.set("Smiling", e == 1)
            rec.set("Eyeglasses", bool(rng.random() < 0.5))
            rec.set("gender_presentation", gender)
            rec.set("skin_tone", tone)
            if j == 0:
                rec.set("Bald", True, origin="pseudo", prob=0.9, model="x")  # must be ignored (not gt)
            records.append(rec)
    return records


@pytest.fixture
def eval_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="session")
def stored_faces(tmp_path_factory) -> Path:
    from facevlm.data.store import save_records

    return save_records(make_records(), tmp_path_factory.mktemp("faces") / "faces")


@pytest.fixture
def tiny_clip_config() -> dict:
    return dict(TINY_CLIP)
