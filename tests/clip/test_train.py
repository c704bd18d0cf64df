"""Tiny FaceCLIP end to end: training lowers the loss, resume reproduces the uninterrupted run, and the
run folder loads through facevlm.clip.load and through open_clip itself with identical embeddings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from facevlm.clip.train import run
from facevlm.clip.train_config import DataConfig, FinetuneConfig


def _cfg(dataset: Path, out: Path, steps: int, **kw) -> FinetuneConfig:
    base = dict(
        model="facevlm-clip-tiny",
        pretrained_towers=False,
        out=str(out),
        steps=steps,
        batch_size=16,
        lr=1e-3,
        warmup_steps=5,
        checkpoint_every=3,
        log_every=1,
        keep_checkpoints=0,
        threads=1,
        precision="fp32",  # exactness tests (resume, accumulation) compare float32 runs; bf16 rounds differently
        data=DataConfig(datasets=[str(dataset)], splits=["train"]),
        aug={"scale": [0.85, 1.0]},
    )
    base.update(kw)
    return FinetuneConfig(**base)


def _losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(toy_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(_cfg(toy_dataset, tmp_path_factory.mktemp("run") / "tiny", steps=60), progress=False)


def test_loss_falls_and_run_folder_is_complete(trained: Path) -> None:
    losses = _losses(trained)
    assert len(losses) == 60
    chance = math.log(16)  # a batch of 16: uniform similarities give ln(16)
    assert sum(losses[-5:]) / 5 < min(sum(losses[:5]) / 5, chance) - 0.15
    for name in (
        "config.yaml",
        "metrics.json",
        "loss_curve.png",
        "open_clip_config.json",
        "open_clip_model.safetensors",
    ):
        assert (trained / name).is_file(), name
    assert json.loads((trained / "metrics.json").read_text())["steps"] == 60


def test_resume_matches_uninterrupted(toy_dataset: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    full = run(_cfg(toy_dataset, tmp_path / "full", steps=6), progress=False)
    half = _cfg(toy_dataset, tmp_path / "half", steps=6)
    half.steps = 3  # stop after the first checkpoint, as if interrupted there
    run(half, progress=False)
    half.steps = 6
    resumed = run(half, resume=str(tmp_path / "half"), progress=False)
    assert _losses(resumed)[3:] == pytest.approx(_losses(full)[3:], rel=1e-5)
    a, b = load_file(str(full / "open_clip_model.safetensors")), load_file(str(resumed / "open_clip_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_augmented_batches_depend_only_on_position(toy_dataset: Path) -> None:
    from facevlm.clip.data import CaptionPairs, EpochSampler, load_training_records
    from facevlm.clip.factory import create

    built = create("facevlm-clip-tiny", pretrained_towers=False, aug_cfg={"scale": [0.5, 1.0]})
    ds = CaptionPairs(load_training_records([str(toy_dataset)], ["train"]), built.train_transform, built.tokenizer)
    x1, t1 = ds[(3, 7)]
    torch.manual_seed(123)  # global RNG state must not matter
    x2, t2 = ds[(3, 7)]
    assert torch.equal(x1, x2) and torch.equal(t1, t2)
    assert not torch.equal(ds[(4, 7)][0], x1)  # another epoch, another augmentation
    s = EpochSampler(len(ds), 16, seed=0, start_batch=7)
    it = iter(s)
    later = [next(it) for _ in range(16)]
    it0 = iter(EpochSampler(len(ds), 16, seed=0))
    assert [next(it0) for _ in range(16 * 8)][-16:] == later
    ranks = [set(EpochSampler(len(ds), 8, rank=r, world_size=2).epoch_order(0)) for r in (0, 1)]
    assert not ranks[0] & ranks[1] and len(ranks[0] | ranks[1]) == len(ds)  # the two ranks split the epoch


def test_save_load_identical_embeddings(trained: Path, tmp_path: Path) -> None:
    import open_clip
    from fakes import toy_records

    from facevlm.clip import load

    images = [r.image for r in toy_records(5, seed=9)]
    texts = ["a smiling face with red hair.", "a person wearing eyeglasses."]
    clip = load(trained)
    e1, t1 = clip.encode_images(images), clip.encode_texts(texts)
    again = load(clip.save(tmp_path / "copy"))
    torch.testing.assert_close(again.encode_images(images), e1, rtol=0, atol=0)
    torch.testing.assert_close(again.encode_texts(texts), t1, rtol=0, atol=0)

    # open_clip alone (as CLIP_benchmark would call it) loads the folder and agrees
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{tmp_path / 'copy'}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{tmp_path / 'copy'}")
    model.eval()
    with torch.no_grad():
        img = torch.nn.functional.normalize(model.encode_image(torch.stack([preprocess(i) for i in images])), dim=-1)
        txt = torch.nn.functional.normalize(model.encode_text(tokenizer(texts)), dim=-1)
    torch.testing.assert_close(img, e1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(txt, t1, rtol=1e-5, atol=1e-6)


def test_accumulation_matches_one_large_batch(toy_dataset: Path, tmp_path: Path) -> None:
    """Feature-cache accumulation: 2 x 8 gives the loss and update of one batch of 16."""
    big = run(_cfg(toy_dataset, tmp_path / "big", steps=2, batch_size=16, warmup_steps=1), progress=False)
    acc = run(_cfg(toy_dataset, tmp_path / "acc", steps=2, batch_size=8, accum_steps=2, warmup_steps=1), progress=False)
    assert _losses(acc) == pytest.approx(_losses(big), rel=1e-4)


def test_siglip_option_trains_and_round_trips(toy_dataset: Path, tmp_path: Path) -> None:
    from facevlm.clip import load

    out = run(_cfg(toy_dataset, tmp_path / "sig", steps=2, loss="siglip"), progress=False)
    clip = load(out)
    assert clip.model.logit_bias is not None and clip.model_cfg["init_logit_bias"] == -10.0
    assert all(math.isfinite(x) for x in _losses(out))


def test_time_limit_stops_after_a_step_and_saves(toy_dataset: Path, tmp_path: Path) -> None:
    from facevlm.clip import load

    out = run(_cfg(toy_dataset, tmp_path / "t", steps=50, time_limit_min=0.0), progress=False)
    clip = load(out)
    assert clip.meta["step"] == 1 and clip.meta["steps_planned"] == 50
    assert (out / "checkpoints" / "step_00000001" / "train_state.pt").is_file()


def test_finetune_command_runs_a_kind_clip_recipe(toy_dataset: Path, tmp_path: Path, capsys) -> None:
    """`facevlm finetune` -> facevlm.finetune (kind: clip) -> train_recipe -> run, with the CLI overrides."""
    import yaml

    from facevlm.cli import main
    from facevlm.clip import load

    recipe = tmp_path / "clip-toy.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "kind": "clip",
                "model": "facevlm-clip-tiny",
                "pretrained_towers": False,
                "steps": 50,
                "batch_size": 16,
                "warmup_steps": 1,
                "threads": 1,
                "data": {"datasets": [str(toy_dataset)]},
                "aug": {"scale": [0.85, 1.0]},
            }
        )
    )
    main(["finetune", str(recipe), "--out", str(tmp_path / "run"), "--steps", "2", "--no-progress"])
    out = tmp_path / "run"
    assert capsys.readouterr().out.strip() == f"model folder: {out}"
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["kind"] == "clip" and saved["steps"] == 2
    assert load(out).meta["recipe"] == "facevlm-clip-toy"


def test_recipes_parse() -> None:
    from facevlm.clip.train_config import FinetuneConfig
    from facevlm.config import load_recipe
    from facevlm.paths import REPO_ROOT

    recipes = sorted((REPO_ROOT / "finetune").glob("clip-*.yaml"))
    assert {r.stem for r in recipes} >= {"clip-small", "clip-tiny", "clip-vit-b16"}
    for recipe in recipes:
        assert load_recipe(FinetuneConfig, recipe).steps > 0


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch, native: bool) -> None:
    """precision auto: bf16 autocast where bf16 matmuls are faster (emulated or slow bf16 would cost time)."""
    from facevlm.clip import train_step

    monkeypatch.setattr(train_step, "bf16_faster", lambda device_type: native)
    autocast, scaler = train_step.autocast_and_scaler(FinetuneConfig(precision="auto"), torch.device("cpu"))
    with autocast():
        out = torch.ones(2, 2) @ torch.ones(2, 2)
    assert scaler is None and out.dtype == (torch.bfloat16 if native else torch.float32)


def test_bf16_channels_last_run_saves_contiguous_weights(toy_dataset: Path, tmp_path: Path) -> None:
    """The CPU default where bf16 is native: channels_last tower under bf16 autocast; the saved safetensors
    load back into a plain model and embed like the trained one."""
    from fakes import toy_records

    from facevlm.clip import load

    out = run(_cfg(toy_dataset, tmp_path / "cl", steps=2, precision="bf16", channels_last=True), progress=False)
    assert all(math.isfinite(x) for x in _losses(out))
    clip = load(out)
    images = [r.image for r in toy_records(3, seed=9)]
    e1 = clip.encode_images(images)
    assert torch.isfinite(e1).all()
    torch.testing.assert_close(load(clip.save(tmp_path / "copy")).encode_images(images), e1, rtol=0, atol=0)


@pytest.mark.assets
def test_text_length_groups_give_the_whole_batch_features_and_gradients() -> None:
    """The training text forward in length groups (train_step.group_text_by_length) on MiniLM: the same
    features and gradients as one padded batch, in the batch's order, from calls of different widths."""
    from facevlm.clip import load
    from facevlm.clip.inference import trim_padding
    from facevlm.clip.train_step import group_text_by_length

    torch.manual_seed(0)
    clip = load("facevlm-clip-small", backend="eager")
    model, tokenizer = clip.model, clip.tokenizer
    model.eval()  # no dropout, so both paths compute the same function
    captions = [
        "a face",
        "a smiling young woman with long dark hair, earrings and a pale blue hat",
        "a man",
        "an older man with a grey beard and glasses looking at the camera",
        "a child",
        "a calm face",
    ]
    tokens = trim_padding(tokenizer(captions), tokenizer)
    proj = model.text.proj.weight
    weights = torch.randn(len(captions), proj.shape[0], generator=torch.Generator().manual_seed(0))

    def features_and_grad() -> tuple[torch.Tensor, torch.Tensor]:
        proj.grad = None
        features = model.encode_text(tokens, normalize=True)
        (features * weights).sum().backward()  # a different weight per row: the order matters
        return features.detach(), proj.grad.clone()

    whole = features_and_grad()
    widths: list[int] = []
    forward = model.text.forward
    model.text.forward = lambda x: widths.append(x.shape[1]) or forward(x)
    assert group_text_by_length(model, tokenizer)
    grouped = features_and_grad()
    assert len(widths) >= 2 and max(widths) == tokens.shape[1] and min(widths) < tokens.shape[1]
    torch.testing.assert_close(grouped[0], whole[0], rtol=0, atol=1e-5)
    assert (grouped[1] - whole[1]).norm() <= 1e-5 * whole[1].norm()


def test_text_length_groups_leave_open_clip_text_towers_alone() -> None:
    from facevlm.clip import factory
    from facevlm.clip.train_step import group_text_by_length

    built = factory.create("facevlm-clip-tiny", None, device="cpu", pretrained_towers=False)
    assert not group_text_by_length(built.model, built.tokenizer)


@pytest.mark.parametrize("dropout", [False, True])
def test_frozen_layers_run_without_dropout_unless_asked(dropout: bool) -> None:
    """train_mode with frozen_modules: locked MiniLM layers and MobileNet blocks run as at inference (no dropout
    draws, BatchNorm statistics kept) while the unlocked layers still train with dropout; `frozen_dropout`
    gives back the old behaviour, where only the frozen BatchNorm layers were held in eval mode."""
    from facevlm.clip import factory
    from facevlm.clip.train_step import freeze_towers, frozen_modules, train_mode

    cfg = FinetuneConfig(image_unlocked_groups=2, text_unlocked_layers=2, frozen_dropout=dropout)
    model = factory.create("facevlm-clip-small", None, device="cpu", pretrained_towers=False).model
    freeze_towers(model, cfg)
    train_mode(model, frozen_modules(model, dropout=cfg.frozen_dropout))
    bert = model.text.transformer
    assert model.training and model.text.proj.training and bert.encoder.layer[-1].training
    assert all(
        not m.training
        for m in model.visual.modules()
        if isinstance(m, torch.nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters())
    )
    assert bert.encoder.layer[0].training is dropout and bert.embeddings.dropout.training is dropout
    tokens = torch.randint(1000, 2000, (4, 12))
    with torch.no_grad():
        lower = [bert(tokens, output_hidden_states=True).hidden_states[4] for _ in range(2)]
        top = [model.encode_text(tokens) for _ in range(2)]
    assert torch.equal(*lower) is not dropout  # frozen layers: the same features every draw
    assert not torch.equal(*top)  # the unlocked layers keep their dropout
