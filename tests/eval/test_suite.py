"""End to end: a suite on a stored face dataset with a random baseline and a tiny untrained open_clip
model; result JSONs in CLIP_benchmark's layout, paired comparisons, report with plots."""

from __future__ import annotations

import json

import pytest
import yaml

from facevlm.errors import FacevlmError
from facevlm.eval.output import CLIP_BENCHMARK_KEYS, OUR_KEYS


def _suite(path, stored, config, **extra):
    suite = {
        "name": "e2e",
        "seed": 0,
        "n_boot": 50,
        "datasets": [{"name": "faces", "source": "store", "ref": str(stored), "split": "test", "train_split": "train"}],
        "models": [
            {"name": "random", "kind": "random"},
            {"name": "tiny", "kind": "open_clip", "model": "facevlm-eval-test-tiny", "config": config},
        ],
        "tasks": [
            {"task": "zeroshot", "attributes": ["expression", "Smiling", "Eyeglasses"]},
            {"task": "retrieval"},
            {"task": "identity", "fars": [0.01, 0.1]},
            {"task": "linear_probe", "attributes": ["expression"], "shots": [0, 1], "probe_seeds": [0, 1]},
            {"task": "robustness", "inner": "identity", "corruptions": ["blur", "occlusion"], "severities": [1, 3]},
            {"task": "efficiency", "n_images": 8, "n_queries": 4, "repeats": 1},
        ],
        "paired": [{"a": "random", "b": "tiny"}],
        "min_group_size": 3,
        **extra,
    }
    path.write_text(yaml.safe_dump(suite))
    return path


def _verification_by_sklearn(stored, far: float) -> tuple[float, float]:
    """ROC AUC and TAR@FAR of the random baseline over all test pairs, recomputed with scikit-learn
    (no ties: random embeddings), independently of facevlm.eval.metrics."""
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve

    from facevlm.eval.datasets import DatasetSpec, load_dataset
    from facevlm.eval.models import ModelSpec, build_model

    data = load_dataset(DatasetSpec(name="faces", source="store", ref=str(stored), split="test"))
    emb = build_model(ModelSpec(name="random", kind="random")).encode_images(data.images)
    i, j = np.triu_indices(len(data), k=1)
    scores, genuine = (emb[i] * emb[j]).sum(1), data.identities[i] == data.identities[j]
    fpr, tpr, _ = roc_curve(genuine, scores, drop_intermediate=False)
    return roc_auc_score(genuine, scores), float(tpr[fpr <= far].max())


def test_suite_end_to_end(tmp_path, eval_home, stored_faces, tiny_clip_config):
    from click.testing import CliRunner

    from facevlm.eval.cli import eval_group

    suite_file = _suite(tmp_path / "suite.yaml", stored_faces, tiny_clip_config)
    out = tmp_path / "run"
    res = CliRunner().invoke(eval_group, ["run", str(suite_file), "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    files = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    expected_tasks = {
        "zeroshot_classification",
        "zeroshot_retrieval",
        "identity",
        "linear_probe",
        "robustness",
        "efficiency",
    }
    for model in ("random", "tiny"):
        got = {d["task"] for d in files.values() if d.get("model") == model}
        assert got == expected_tasks, (model, got)
    tiny_zs = files["faces__tiny__zeroshot_classification.json"]
    assert set(tiny_zs) == set(CLIP_BENCHMARK_KEYS) | set(OUR_KEYS)
    assert tiny_zs["model"] == "tiny" and tiny_zs["pretrained"] == "random-init"
    assert (
        tiny_zs["fingerprint"]["model"] != files["faces__random__zeroshot_classification.json"]["fingerprint"]["model"]
    )
    assert tiny_zs["n"] == 24 and tiny_zs["language"] == "en" and tiny_zs["suite"] == "e2e"
    m, ci = tiny_zs["metrics"], tiny_zs["ci"]
    for key in ("expression/acc1", "expression/balanced_accuracy", "mAP", "mean_accuracy", "acc/Smiling"):
        assert key in m and ci[key][0] <= m[key] <= ci[key][1]
    assert "ap/Bald" not in m  # pseudo-labels are not ground truth
    assert set(tiny_zs["groups"]) == {"gender_presentation", "skin_tone"}
    g = tiny_zs["groups"]["gender_presentation"]
    assert set(g["n"].values()) == {12} and g["gap"] == pytest.approx(
        abs(g["values"]["feminine"] - g["values"]["masculine"])
    )
    retr = files["faces__tiny__zeroshot_retrieval.json"]["metrics"]
    assert {
        "image_retrieval_recall@1",
        "text_retrieval_recall@10",
        "image_retrieval_mAP",
        "text_retrieval_median_rank",
    } <= set(retr)
    ident = files["faces__random__identity.json"]["metrics"]
    auc, tar = _verification_by_sklearn(stored_faces, far=0.1)
    assert ident["roc_auc"] == pytest.approx(auc) and ident["tar@far=0.1"] == pytest.approx(tar)
    probe = files["faces__tiny__linear_probe.json"]["metrics"]
    assert {"expression/full/acc1", "expression/1shot/acc1"} <= set(probe)
    rob = files["faces__tiny__robustness.json"]["metrics"]
    assert {"clean/rank1", "blur@1/rank1", "occlusion@3/rank1", "mean_corrupted/rank1"} <= set(rob)
    eff = files["faces__tiny__efficiency.json"]["metrics"]
    assert eff["images_per_s"] > 0 and eff["ms_per_query"] > 0
    pairs = [d for d in files.values() if d.get("kind") == "paired"]
    assert {p["task"] for p in pairs} >= {"zeroshot_classification", "identity", "linear_probe"}
    zs_pair = next(p for p in pairs if p["task"] == "zeroshot_classification")
    h = zs_pair["headline"]
    assert zs_pair["diff"][h] == pytest.approx(
        m[h] - files["faces__random__zeroshot_classification.json"]["metrics"][h]
    )
    report = (out / "report" / "report.md").read_text()
    assert zs_pair["model_a"] == "random" and zs_pair["model_b"] == "tiny"
    assert "faces · zeroshot_classification" in report and "Paired comparisons" in report
    assert "| tiny − random |" in report  # the comparison column names the models, not their metrics
    assert (out / "report" / "report.html").is_file()
    plots = {p.name for p in (out / "report" / "plots").glob("*.png")}
    assert "recall_at_k__faces.png" in plots and "robustness__faces.png" in plots
    assert "groups__faces__zeroshot_classification.png" in plots
    cached = list((eval_home / "cache" / "embeddings").rglob("*.npy"))
    assert cached  # embeddings cached by model + dataset fingerprint
    # compare and report commands on the written files
    res = CliRunner().invoke(
        eval_group,
        ["compare", str(out / "faces__random__identity.json"), str(out / "faces__tiny__identity.json")],
        catch_exceptions=False,
    )
    assert res.exit_code == 0 and "rank1" in res.output
    res = CliRunner().invoke(
        eval_group, ["report", str(out), "--out", str(tmp_path / "merged")], catch_exceptions=False
    )
    assert res.exit_code == 0 and (tmp_path / "merged" / "report.md").is_file()


def test_suite_errors_name_the_problem(tmp_path, stored_faces, tiny_clip_config):
    from facevlm.eval.suite import load_suite

    bad = _suite(tmp_path / "bad.yaml", stored_faces, tiny_clip_config, colour="blue")
    with pytest.raises(FacevlmError, match="unknown key"):
        load_suite(bad)
    data = yaml.safe_load((tmp_path / "bad.yaml").read_text())
    data.pop("colour")
    data["tasks"].append({"task": "zeroshot", "models": ["nope"]})
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(FacevlmError, match=r"tasks\[6\] names unknown model"):
        load_suite(bad)


@pytest.mark.parametrize("name", ["smoke", "synthetic", "faces-real", "samples", "real", "vlm", "ablation-first-run"])
def test_shipped_suites_parse(name):
    from facevlm.eval.suite import load_suite
    from facevlm.paths import REPO_ROOT

    suite = load_suite(REPO_ROOT / "eval" / f"{name}.yaml")
    assert suite.name == name and suite.models and suite.tasks


def test_unset_dataset_root_names_the_variable(monkeypatch):
    from facevlm.eval.datasets import DatasetSpec, load_dataset

    monkeypatch.delenv("LFW_ROOT", raising=False)
    with pytest.raises(FacevlmError, match=r"root '\$\{LFW_ROOT\}' is not set"):
        load_dataset(DatasetSpec(name="lfw", source="adapter", ref="lfw", root="${LFW_ROOT}"))


def test_select_keeps_only_the_named_tasks_and_refuses_unknown_ones():
    from facevlm.eval.suite import load_suite, select
    from facevlm.paths import REPO_ROOT

    suite = select(load_suite(REPO_ROOT / "eval" / "synthetic.yaml"), [], [], ["zeroshot", "retrieval"])
    assert [t.task for t in suite.tasks] == ["zeroshot", "retrieval"]
    with pytest.raises(FacevlmError, match="no task"):
        select(load_suite(REPO_ROOT / "eval" / "synthetic.yaml"), [], [], ["nope"])


def test_train_limit_caps_only_the_probe_train_split():
    from facevlm.eval.datasets import DatasetSpec, load_dataset

    options = {"n_identities": 12, "per_identity": 2, "size": 128}
    full = DatasetSpec(name="s", source="synth", split="test", train_split="train", options=options)
    n_train, n_test = (len(load_dataset(full, s).images) for s in ("train", "test"))
    assert n_train > 4 and n_test > 3
    capped = DatasetSpec(
        name="s", source="synth", split="test", train_split="train", limit=n_test - 1, train_limit=4, options=options
    )
    assert len(load_dataset(capped, "train").images) == 4
    assert len(load_dataset(capped, "test").images) == n_test - 1
