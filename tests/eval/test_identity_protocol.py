"""LFW's verification protocol through the real LFW adapter, on a tiny LFW-layout tree written by
the test (generated JPEGs, the distributed file formats)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score, roc_curve


def _lfw_tree(root, people=("Ann_A", "Bob_B", "Cyd_C"), per=3):
    rng = np.random.default_rng(0)
    img_dir = root / "lfw"
    for name in people:
        (img_dir / name).mkdir(parents=True)
        for k in range(1, per + 1):
            arr = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(arr).save(img_dir / name / f"{name}_{k:04d}.jpg")
    (root / "peopleDevTest.txt").write_text(f"{len(people)}\n" + "".join(f"{n}\t{per}\n" for n in people))
    matched = [f"{n}\t1\t{k}" for n in people for k in (2, 3)]
    mismatched = [
        f"{a}\t1\t{b}\t2"
        for a, b in (
            ("Ann_A", "Bob_B"),
            ("Ann_A", "Cyd_C"),
            ("Bob_B", "Cyd_C"),
            ("Bob_B", "Ann_A"),
            ("Cyd_C", "Ann_A"),
            ("Cyd_C", "Bob_B"),
        )
    ]
    (root / "pairsDevTest.txt").write_text(f"{len(matched)}\n" + "\n".join(matched + mismatched) + "\n")
    return root


def test_lfw_pairs_protocol(tmp_path, monkeypatch):
    from facevlm.eval.datasets import DatasetSpec, load_dataset
    from facevlm.eval.models import ModelSpec, build_model
    from facevlm.eval.suite import TaskSpec
    from facevlm.eval.tasks import Context
    from facevlm.eval.tasks.identity import run

    root = _lfw_tree(tmp_path / "lfwroot")
    monkeypatch.setenv("LFW_TEST_ROOT", str(root))
    data = load_dataset(DatasetSpec(name="lfw", source="adapter", ref="lfw", root="$LFW_TEST_ROOT", split="test"))
    assert len(data) == 9 and set(data.identities) == {"lfw:Ann_A", "lfw:Bob_B", "lfw:Cyd_C"}
    cfg = TaskSpec(task="identity", pairs_file="${LFW_TEST_ROOT}/pairsDevTest.txt", fars=[0.5])
    model = build_model(ModelSpec(name="r", kind="random"))
    res = run(model, data, cfg, Context(n_boot=20, group_attributes=()))[0]
    assert res.extra["n_pairs"] == 12 and res.extra["n_genuine"] == 6
    # the protocol's 12 pairs, scored independently: cosine of the random embeddings, scikit-learn's AUC
    emb = {k: e for k, e in zip(data.ids, model.encode_images(data.images))}
    face = "lfw/{0}/{0}_{1:04d}.jpg".format
    pairs = [(face(n, 1), face(n, k)) for n in ("Ann_A", "Bob_B", "Cyd_C") for k in (2, 3)] + [
        (face(a, 1), face(b, 2))
        for a, b in (
            ("Ann_A", "Bob_B"),
            ("Ann_A", "Cyd_C"),
            ("Bob_B", "Cyd_C"),
            ("Bob_B", "Ann_A"),
            ("Cyd_C", "Ann_A"),
            ("Cyd_C", "Bob_B"),
        )
    ]
    scores = np.array([emb[a] @ emb[b] for a, b in pairs])
    genuine = np.array([True] * 6 + [False] * 6)
    fpr, tpr, _ = roc_curve(genuine, scores, drop_intermediate=False)
    assert res.metrics["roc_auc"] == pytest.approx(roc_auc_score(genuine, scores))
    assert res.metrics["tar@far=0.5"] == pytest.approx(tpr[fpr <= 0.5].max())
