"""The forward backends (facevlm.clip.backends, facevlm.clip.onnxrt) and the text-embedding cache.

The fast paths must give the eager embeddings, images and texts, on real photos with the trained default
model, and the fallbacks are exercised for real: switched off by their environment variables, by a C
compiler that does not exist (inductor then genuinely fails to build its kernels), and by an ONNX opset
the exporter cannot write."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import torch

from facevlm.clip import backends
from facevlm.errors import FacevlmError


@pytest.fixture(scope="module")
def photos(assets_home):
    from facevlm.image import open_image

    folder = assets_home / "assets" / "samples"
    files = [folder / s["file"] for s in json.loads((folder / "samples.json").read_text()) if s["kind"] == "image"]
    return [open_image(f) for f in files[:7]]


@pytest.fixture(scope="module")
def small_model(assets_home, tmp_path_factory) -> str:
    """facevlm-clip-small (MobileNetV2-ImageNet + MiniLM) saved once, so every backend loads the same
    weights: the trained checkpoint where `make models` made one, else the pretrained towers with seeded
    projections (as on a clean CI machine, where each load would draw new ones)."""
    import torch

    from facevlm.clip import load

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("clip-small") / "facevlm-clip-small"
    load("facevlm-clip-small", backend="eager").save(folder)
    return str(folder)


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    from facevlm.clip.prompts import attribute_prompts

    head = attribute_prompts("expression").values()
    return list(dict.fromkeys(p for pos, states in head for p in pos + sum(states, [])))[:40]


@pytest.mark.assets
@pytest.mark.parametrize(
    ("backend", "runs_as"),
    [("channels_last", "channels_last"), ("compile", "compile"), ("onnx", "onnx"), ("auto", "onnx")],
)
def test_fast_backends_equal_eager_on_real_photos(small_model, photos, prompts, backend, runs_as) -> None:
    from facevlm.clip import load

    eager = load(small_model, backend="eager", text_cache=backends.TextCache(0))
    fast = load(small_model, backend=backend, text_cache=backends.TextCache(0))
    want = eager.encode_images(photos, batch_size=4)
    got = fast.encode_images(photos, batch_size=4)  # 4 + 3: chunks 4, 2, 1 when compiled
    assert got.shape == want.shape
    assert (got - want).abs().max() <= 1e-3
    assert (got * want).sum(-1).min() >= 0.9999
    assert backends.image_runner(fast.model, backend).backend == runs_as  # no silent fallback
    # text: the 40 prompts in batches of 16 (lengths differ per batch), then one short query
    for texts in (prompts, ["a smiling woman"]):
        want, got = eager.encode_texts(texts, batch_size=16), fast.encode_texts(texts, batch_size=16)
        assert (got - want).abs().max() <= 1e-3 and (got * want).sum(-1).min() >= 0.9999
    assert backends.text_runner(fast.model, backend).backend == ("onnx" if runs_as == "onnx" else "eager")


def _tiny(backend: str = "eager"):
    from facevlm.clip import load

    torch.manual_seed(0)
    return load("facevlm-clip-tiny", backend=backend, text_cache=backends.TextCache(0))


def _toy_images(n: int):
    from fakes import toy_records

    return [r.image for r in toy_records(n, seed=5)]


def _fallbacks(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]


def test_compile_disabled_falls_back_with_one_log_line(monkeypatch, caplog) -> None:
    monkeypatch.setenv(backends.NO_COMPILE_ENV, "1")
    clip = _tiny()
    images = _toy_images(3)
    want = clip.encode_images(images)
    clip.backend = "compile"
    with caplog.at_level(logging.WARNING, logger="facevlm"):
        got = clip.encode_images(images)
        clip.encode_images(images)
    assert _fallbacks(caplog) == [
        f"clip image backend compile unavailable ({backends.NO_COMPILE_ENV} is set); using channels_last"
    ]
    assert backends.image_runner(clip.model, "compile").backend == "channels_last"
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_compile_failure_falls_back(monkeypatch, tmp_path, caplog) -> None:
    import torch._dynamo
    import torch._inductor.config as inductor_config

    monkeypatch.delenv(backends.NO_COMPILE_ENV, raising=False)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # nothing cached: it must build
    monkeypatch.setattr(inductor_config.cpp, "cxx", (str(tmp_path / "no-such-c++"),))
    torch._dynamo.reset()
    clip = _tiny()
    images = _toy_images(2)
    want = clip.encode_images(images)
    clip.backend = "compile"
    with caplog.at_level(logging.WARNING, logger="facevlm"):
        got = clip.encode_images(images)
    torch._dynamo.reset()
    assert any("compile unavailable" in r.getMessage() for r in caplog.records)
    assert backends.image_runner(clip.model, "compile").backend == "channels_last"
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_onnx_and_compile_disabled_fall_back_step_by_step(monkeypatch, caplog) -> None:
    """auto on CPU with both builds switched off: image onnx -> compile -> channels_last, text onnx -> eager,
    each step one log line, and the embeddings still eager's."""
    monkeypatch.setenv(backends.NO_COMPILE_ENV, "1")
    monkeypatch.setenv(backends.NO_ONNX_ENV, "1")
    clip = _tiny()
    images, texts = _toy_images(3), ["a smiling face", "a person wearing eyeglasses"]
    want_img, want_txt = clip.encode_images(images), clip.encode_texts(texts)
    clip.backend = "auto"
    with caplog.at_level(logging.WARNING, logger="facevlm"):
        got_img, got_txt = clip.encode_images(images), clip.encode_texts(texts)
        clip.encode_images(images), clip.encode_texts(texts)
    env = backends.NO_ONNX_ENV
    assert _fallbacks(caplog) == [
        f"clip image backend onnx unavailable ({env} is set); using compile",
        f"clip image backend compile unavailable ({backends.NO_COMPILE_ENV} is set); using channels_last",
        f"clip text backend onnx unavailable ({env} is set); using eager",
    ]
    torch.testing.assert_close(got_img, want_img, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_txt, want_txt, atol=1e-6, rtol=0)


def test_export_failure_falls_back(monkeypatch, tmp_path, caplog) -> None:
    """A real exporter failure (an opset torch cannot write) sends both towers down their fallbacks."""
    from facevlm.clip import onnxrt

    monkeypatch.setattr(onnxrt, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(onnxrt, "OPSET", 1)
    monkeypatch.setenv(backends.NO_COMPILE_ENV, "1")
    clip = _tiny()
    images, texts = _toy_images(2), ["a smiling face"]
    want_img, want_txt = clip.encode_images(images), clip.encode_texts(texts)
    clip.backend = "onnx"
    with caplog.at_level(logging.WARNING, logger="facevlm"):
        got_img, got_txt = clip.encode_images(images), clip.encode_texts(texts)
    messages = _fallbacks(caplog)
    assert messages[0].startswith("clip image backend onnx unavailable (") and messages[0].endswith("using compile")
    assert messages[-1].startswith("clip text backend onnx unavailable (") and messages[-1].endswith("using eager")
    assert not list(tmp_path.glob("*.onnx"))
    torch.testing.assert_close(got_img, want_img, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_txt, want_txt, atol=1e-6, rtol=0)


def test_onnx_exports_once_per_weights_follows_in_place_changes_and_prunes(monkeypatch, tmp_path, caplog) -> None:
    from facevlm.clip import onnxrt

    def exports() -> int:
        return sum("clip image tower exported" in r.getMessage() for r in caplog.records)

    monkeypatch.setattr(onnxrt, "cache_dir", lambda: tmp_path)
    caplog.set_level(logging.INFO, logger="facevlm")
    images = _toy_images(5)
    clip = _tiny("onnx")
    eager = _tiny()  # the same seed: the same weights
    torch.testing.assert_close(clip.encode_images(images), eager.encode_images(images), atol=1e-5, rtol=0)
    files = sorted(tmp_path.glob("image-*.onnx"))
    assert len(files) == 1 and exports() == 1
    again = _tiny("onnx")  # a second model with the same weights reuses the cached export
    torch.testing.assert_close(again.encode_images(images[:3]), eager.encode_images(images[:3]), atol=1e-5, rtol=0)
    assert sorted(tmp_path.glob("image-*.onnx")) == files and exports() == 1
    with torch.no_grad():  # an in-place change (a training step) makes the export stale: re-exported
        for model in (clip.model, eager.model):
            next(model.visual.parameters()).mul_(1.5)
    monkeypatch.setattr(onnxrt, "KEEP_EXPORTS", 1)
    torch.testing.assert_close(clip.encode_images(images), eager.encode_images(images), atol=1e-5, rtol=0)
    left = sorted(tmp_path.glob("image-*.onnx"))
    assert exports() == 2 and len(left) == 1 and left != files  # the new export, the stale one pruned
    assert backends.image_runner(clip.model, "onnx").backend == "onnx"


def test_bf16_is_opt_in_and_close() -> None:
    """bf16 autocast misses the 1e-3 bound (so no default picks it) but stays close and float32."""
    clip, eager = _tiny("bf16"), _tiny()
    images, texts = _toy_images(3), ["a smiling face", "a person wearing eyeglasses"]
    pairs = [(clip.encode_images(images), eager.encode_images(images))]
    pairs.append((clip.encode_texts(texts), eager.encode_texts(texts)))
    for got, want in pairs:
        assert got.dtype == torch.float32 and (got * want).sum(-1).min() >= 0.99
    assert backends.resolve("auto", torch.device("cpu")) == "onnx"


def test_chunks_are_static_powers_of_two() -> None:
    assert backends.chunks(32) == [32]
    assert backends.chunks(13) == [8, 4, 1]
    assert backends.chunks(130) == [64, 64, 2]
    assert backends.chunks(0) == []
    assert {c for n in range(1, 300) for c in backends.chunks(n)} <= {64, 32, 16, 8, 4, 2, 1}


def test_unknown_backend_is_refused() -> None:
    from facevlm.clip import load

    with pytest.raises(FacevlmError, match="not one of eager, channels_last, compile, onnx, bf16, auto"):
        load("facevlm-clip-tiny", backend="openvino")


def test_text_cache_hits_equal_fresh_encodes() -> None:
    from facevlm.clip import inference

    cache = backends.TextCache(8)
    clip = _tiny()
    clip.text_cache = cache
    texts = ["a smiling face", "a person wearing eyeglasses", "a smiling face"]
    first = clip.encode_texts(texts)
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 2)
    again = clip.encode_texts(texts[:2])
    assert cache.hits == 2
    torch.testing.assert_close(again, first[:2])
    torch.testing.assert_close(first, inference.encode_texts(clip.model, clip.tokenizer, texts), atol=1e-6, rtol=0)
    head = clip.zero_shot_head("Smiling")  # prompts embedded once, through the cache
    torch.testing.assert_close(head.positive, inference.zero_shot_head(clip.model, clip.tokenizer, "Smiling").positive)


def test_text_cache_is_bounded_and_keyed_by_model() -> None:
    cache = backends.TextCache(2)
    row = torch.ones(4)
    cache.put_many("model-a", ["x", "y"], torch.stack([row, 2 * row]))
    cache.put_many("model-b", ["x"], torch.stack([3 * row]))
    assert len(cache) == 2
    a_x, a_y, b_x = (
        cache.get_many("model-a", ["x"]) + cache.get_many("model-a", ["y"]) + cache.get_many("model-b", ["x"])
    )
    assert a_x is None and torch.equal(a_y, 2 * row) and torch.equal(b_x, 3 * row)  # LRU dropped a/x
    with pytest.raises(FacevlmError, match="non-negative"):
        backends.TextCache(-1)


def test_text_cache_under_concurrent_threads() -> None:
    cache = backends.TextCache(50)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(300):
                text = f"t{(i * 7 + k) % 80}"
                cache.put_many("m", [text], torch.full((1, 3), float(hash(text) % 1000)))
                got = cache.get_many("m", [text])[0]
                assert got is None or got[0].item() == float(hash(text) % 1000)
        except BaseException as exc:  # surfaced below: a thread's assertion would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache) == 50


@pytest.mark.assets
def test_length_batches_come_back_in_the_callers_order(small_model, prompts) -> None:
    """The prompts (11-17 tokens) run in several batches of similar length: each row is the text's own."""
    from facevlm.clip import inference, load

    clip = load(small_model, backend="eager", text_cache=backends.TextCache(0))
    lengths = (clip.tokenizer(prompts) != 0).sum(1).tolist()
    assert len(inference.length_batches(lengths, 64)) > 1
    one_by_one = torch.cat([clip.encode_texts([t]) for t in prompts])
    torch.testing.assert_close(clip.encode_texts(prompts), one_by_one, atol=1e-5, rtol=0)
