"""`facevlm finetune` dispatches on the recipe's `kind:`; a kind it does not know is one line, not a trace."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from facevlm import finetune
from facevlm.cli import main
from facevlm.paths import REPO_ROOT


def _error_line(capsys: pytest.CaptureFixture, recipe: Path) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", str(recipe)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("kind: llm\nmodel: x\n", "unknown kind 'llm'; known kinds: clip, vlm"),
        ("kind: [clip]\n", "unknown kind ['clip']; known kinds: clip, vlm"),
        ("model: facevlm-clip-tiny\n", "no `kind:` (what the recipe trains); known kinds: clip, vlm"),
    ],
)
def test_unknown_or_missing_kind_is_one_line_naming_the_known_kinds(tmp_path, capsys, body, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(body)
    assert _error_line(capsys, recipe) == f"error: {recipe}: {message}"


def test_clip_kind_rejects_a_bad_recipe_with_its_path(tmp_path, capsys):
    """The dispatch reached the clip trainer: its own validation answers, naming the recipe."""
    recipe = tmp_path / "clip-bad.yaml"
    recipe.write_text("kind: clip\nmodel: facevlm-clip-tiny\nsteps: 0\n")
    assert _error_line(capsys, recipe) == f"error: {recipe}: steps: must be a positive integer"


def test_every_kind_resolves_to_a_trainer_and_every_recipe_names_one():
    for kind in finetune.TRAINERS:
        params = inspect.signature(finetune.trainer(kind)).parameters
        assert list(params)[:1] == ["recipe"] and {"resume", "out", "steps", "progress"} <= set(params), kind
    recipes = sorted((REPO_ROOT / "finetune").glob("*.yaml"))
    assert recipes and all(finetune.recipe_kind(r) in finetune.TRAINERS for r in recipes)


def test_shipped_vlm_recipes_validate_and_chain():
    """The two FaceVLM stages parse, the LoRA stage starts from the align stage's model, and both are bounded."""
    from facevlm.config import load_recipe
    from facevlm.vlm.config import VLMRecipe

    align = load_recipe(VLMRecipe, REPO_ROOT / "finetune" / "vlm-align-small.yaml")
    sft = load_recipe(VLMRecipe, REPO_ROOT / "finetune" / "vlm-lora-small.yaml")
    assert (align.stage, sft.stage) == ("align", "sft") and sft.init == align.model
    # Fixed steps, a full schedule each (13.5 min for both on 2 quiet cores: docs/benchmarks.md, not a timed
    # test); the time caps bound `make models` on a loaded machine, where a stage stops and saves early.
    assert align.steps and sft.steps and align.steps <= 200 and sft.steps <= 200
    assert align.time_limit_min and sft.time_limit_min and align.time_limit_min + sft.time_limit_min <= 30
