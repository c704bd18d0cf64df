"""The image-forward backends (facevlm.clip.backends) and the text-embedding cache.

The fast paths must give the eager embeddings on real photos with the trained default model, and the
compile fallback is exercised for real: once switched off by its environment variable, once by a C
compiler that does not exist (inductor then genuinely fails to build its kernels)."""

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


@pytest.mark.assets
@pytest.mark.parametrize("backend", ["channels_last", "compile", "auto"])
def test_fast_backends_equal_eager_on_real_photos(small_model, photos, backend) -> None:
    from facevlm.clip import load

    eager = load(small_model, backend="eager").encode_images(photos, batch_size=4)
    fast = load(small_model, backend=backend)
    got = fast.encode_images(photos, batch_size=4)  # 4 + 3: chunks 4, 2, 1 when compiled
    assert got.shape == eager.shape
    assert (got - eager).abs().max() <= 1e-3
    assert (got * eager).sum(-1).min() >= 0.9999
    runner = backends.image_runner(fast.model, backend)
    assert runner.backend == ("channels_last" if backend == "channels_last" else "compile")  # no silent fallback


def _tiny():
    from facevlm.clip import load

    torch.manual_seed(0)
    return load("facevlm-clip-tiny", backend="eager")


def _toy_images(n: int):
    from fakes import toy_records

    return [r.image for r in toy_records(n, seed=5)]


def test_compile_disabled_falls_back_with_one_log_line(monkeypatch, caplog) -> None:
    monkeypatch.setenv(backends.NO_COMPILE_ENV, "1")
    clip = _tiny()
    images = _toy_images(3)
    want = clip.encode_images(images)
    clip.backend = "compile"
    with caplog.at_level(logging.WARNING, logger="facevlm"):
        got = clip.encode_images(images)
        clip.encode_images(images)
    assert [r.getMessage() for r in caplog.records if "compile unavailable" in r.getMessage()] == [
        f"clip backend compile unavailable ({backends.NO_COMPILE_ENV} is set); using channels_last"
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


def test_chunks_are_static_powers_of_two() -> None:
    assert backends.chunks(32) == [32]
    assert backends.chunks(13) == [8, 4, 1]
    assert backends.chunks(130) == [64, 64, 2]
    assert backends.chunks(0) == []
    assert {c for n in range(1, 300) for c in backends.chunks(n)} <= {64, 32, 16, 8, 4, 2, 1}


def test_unknown_backend_is_refused() -> None:
    from facevlm.clip import load

    with pytest.raises(FacevlmError, match="not one of eager, channels_last, compile, auto"):
        load("facevlm-clip-tiny", backend="onnx")


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
