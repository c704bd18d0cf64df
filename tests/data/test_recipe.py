"""A recipe run at tiny size: adapter source -> caption -> identity-disjoint split -> saved dataset."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import face_fixtures as fx
import pytest
from click.testing import CliRunner

from facevlm.config import load_recipe
from facevlm.data.recipe import Recipe, plan, run
from facevlm.data.splits import group_key
from facevlm.data.store import iter_records, load_records
from facevlm.errors import FacevlmError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_tiny_recipe_end_to_end(tmp_path, monkeypatch):
    from facevlm.cli import cli

    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path / "home"))
    celeba = fx.celeba(tmp_path / "celeba", n=30)
    lfw = fx.lfw(tmp_path / "lfw")
    recipe = write(
        tmp_path / "tiny.yaml",
        f"""
name: tiny
sources:
  - adapter: {{name: celeba, root: {celeba}, split: train, limit: 20}}
  - adapter: {{name: lfw, root: {lfw}, split: all}}
detect: {{enabled: false}}
caption: {{n: 2, seed: 1}}
qa: {{per_face: 1}}
splits: {{val: 0.2, test: 0.2, seed: 0}}
""",
    )
    result = CliRunner().invoke(cli, ["data", "build", str(recipe)])
    assert result.exit_code == 0, result.output
    assert "built tiny: " in result.output
    recs = list(iter_records(load_records("tiny")))
    assert Counter(r.source for r in recs)["lfw"] == 8 and len(recs) <= 28
    assert all(len(r.captions) >= 1 for r in recs if r.source == "celeba")
    owner: dict[str, set[str]] = {}
    for r in recs:
        owner.setdefault(group_key(r.identity, r.image_key), set()).add(r.split)
    assert all(len(s) == 1 for s in owner.values()) and {r.split for r in recs} == {"train", "val", "test"}
    prov = json.loads((tmp_path / "home" / "datasets" / "tiny" / "recipe.json").read_text())
    assert [s["source"] for s in prov["sources"]] == ["celeba", "lfw"] and prov["sources"][0]["loaded"] == 20
    assert not (tmp_path / "home" / "datasets" / "tiny.unsplit").exists()
    qa_dir = tmp_path / "home" / "datasets" / "tiny" / "qa"
    samples = [
        json.loads(x) for s in ("train", "val", "test") for x in (qa_dir / f"{s}.jsonl").read_text().splitlines()
    ]
    assert samples and all((qa_dir / p).is_file() for s in samples for p in s["images"])
    assert sum(prov["qa"]["rows"].values()) == len(samples)


def test_missing_stage_fails_before_any_work(tmp_path, monkeypatch):
    from facevlm.data import recipe as recipe_mod

    lfw = fx.lfw(tmp_path / "lfw")
    recipe = load_recipe(
        Recipe, write(tmp_path / "r.yaml", f"name: x\nsources: [{{adapter: {{name: lfw, root: {lfw}}}}}]\nqa: {{}}\n")
    )
    assert "qa" in plan(recipe).stages
    monkeypatch.setitem(recipe_mod.STAGES, "qa", ("facevlm.data.qa_not_built", "qa_samples", ("QAConfig",)))
    with pytest.raises(ModuleNotFoundError, match="qa_not_built"):
        run(recipe, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    off = load_recipe(
        Recipe,
        write(
            tmp_path / "off.yaml",
            f"name: y\nsources: [{{adapter: {{name: lfw, root: {lfw}}}}}]\nqa: {{enabled: false}}\n",
        ),
    )
    assert "qa" not in plan(off).stages


def test_recipe_validation_errors(tmp_path):
    with pytest.raises(FacevlmError, match=r"sources\[0\] must set exactly one"):
        load_recipe(Recipe, write(tmp_path / "a.yaml", "name: a\nsources:\n  - {}\n"))
    with pytest.raises(FacevlmError, match="unknown key"):
        load_recipe(Recipe, write(tmp_path / "b.yaml", "name: b\nsources: [{samples: {}}]\nsplit: {}\n"))
    bad_caption = load_recipe(
        Recipe, write(tmp_path / "c.yaml", "name: c\nsources: [{samples: {}}]\ncaption: {colour: red}\n")
    )
    with pytest.raises(FacevlmError, match=r"c.yaml: caption: unknown key\(s\) colour"):
        plan(bad_caption, where=str(tmp_path / "c.yaml"))


@pytest.mark.parametrize("name", ["synthetic-small", "synthetic", "samples"])
def test_shipped_recipes_parse(name):
    from facevlm.paths import REPO_ROOT

    recipe = load_recipe(Recipe, REPO_ROOT / "data" / f"{name}.yaml")
    assert recipe.name == name and recipe.sources


def test_synth_source_through_recipe(tmp_path):
    """The synth source is wired by the agreed names (SynthConfig fields, generate(cfg, workers))."""
    recipe = load_recipe(
        Recipe,
        write(
            tmp_path / "s.yaml",
            """
name: s
sources:
  - synth: {n_identities: 3, per_identity: 2, size: 128, seed: 5}
    workers: 1
splits: {val: 0.0, test: 0.34, seed: 0}
""",
        ),
    )
    recs = list(iter_records(load_records(run(recipe, tmp_path / "s"))))
    assert len(recs) == 6 and all(r.source == "synthetic" and r.box for r in recs)
    owner: dict[str, set[str]] = {}
    for r in recs:
        owner.setdefault(r.identity, set()).add(r.split)
    assert len(owner) == 3 and all(len(s) == 1 for s in owner.values())
