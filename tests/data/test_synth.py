"""Synthetic renderer: determinism, parallel == serial, geometry labels inside the image, labels that
match pixels, and one-factor mode changing only its factor."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from facevlm.data.synth import SynthConfig, generate
from facevlm.data.synth.generate import draw
from facevlm.data.synth.identity import FACIAL_HAIR, sample_identity
from facevlm.data.synth.render import render
from facevlm.data.synth.scene import EYEWEAR, FACTOR_LABELS, FACTORS, sample_scene, vary
from facevlm.errors import FacevlmError
from facevlm.schema import EXPRESSIONS, VOCABULARY, canonical_value

SIZE = 128


def _key(rec):
    return rec.id, np.asarray(rec.image).tobytes(), rec.box, rec.landmarks, [(a.name, a.value) for a in rec.attributes]


def test_same_config_gives_identical_bytes_and_parallel_equals_serial():
    cfg = SynthConfig(n_identities=3, per_identity=3, size=SIZE, seed=7)
    serial = [_key(r) for r in generate(cfg, workers=1)]
    again = [_key(r) for r in generate(cfg, workers=1)]
    parallel = [_key(r) for r in generate(cfg, workers=2)]
    assert serial == again == parallel
    other = [_key(r) for r in generate(dataclasses.replace(cfg, seed=8), workers=1)]
    assert serial[0][1] != other[0][1]


def test_encoded_records_carry_the_same_pixels_as_png():
    """`encoded=True` (what a recipe build stores): PNG bytes made in the workers, the pixels unchanged."""
    from facevlm.image import open_image

    cfg = SynthConfig(n_identities=3, per_identity=3, size=SIZE, seed=7)
    images = [np.asarray(r.image) for r in generate(cfg, workers=1)]
    for workers in (1, 2):
        encoded = list(generate(cfg, workers=workers, encoded=True))
        assert all(isinstance(r.image, bytes) and r.image[:8] == b"\x89PNG\r\n\x1a\n" for r in encoded)
        assert all(np.array_equal(np.asarray(open_image(r.image)), px) for r, px in zip(encoded, images))


def test_records_follow_the_schema_and_geometry_is_inside_the_image():
    recs = list(generate(SynthConfig(n_identities=4, per_identity=2, size=SIZE, seed=1), workers=1))
    assert len(recs) == 8
    for r in recs:
        assert r.image.size == (SIZE, SIZE) and r.source == "synthetic" and r.licence.startswith("CC0")
        assert r.identity.startswith("synth-1-") and r.id.startswith(r.identity)
        x0, y0, x1, y1 = r.box
        assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE and (x1 - x0) > 0.25 * SIZE
        assert len(r.landmarks) == 5
        for x, y in r.landmarks:  # every landmark lies inside the face box
            assert x0 <= x <= x1 and y0 <= y <= y1
        (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = r.landmarks
        assert lex < rex and lmx < rmx  # image-left first
        assert min(ley, rey) < ny < max(lmy, rmy) + 1  # eyes above the nose tip above the mouth
        for a in r.attributes:
            assert a.origin == "gt" and canonical_value(a.name, a.value) == a.value
    # identity is stable across renders: same identity -> same skin/gender/age labels
    by_id: dict[str, set] = {}
    for r in recs:
        by_id.setdefault(r.identity, set()).add((r.get("skin_tone"), r.get("gender_presentation"), r.get("age")))
    assert all(len(v) == 1 for v in by_id.values())


def _pair(factor: str, a: str, b: str, index: int = 3):
    cfg = SynthConfig(size=SIZE, seed=5, one_factor=factor)
    return [render(*draw(cfg, index, 0, v), SIZE, keep_masks=True) for v in (a, b)]


def _diff(x, y) -> np.ndarray:
    return np.abs(x.image.astype(int) - y.image.astype(int)).max(-1)


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    import cv2

    return cv2.dilate((mask > 0.01).astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


@pytest.mark.parametrize("kind", ["eyeglasses", "sunglasses"])
def test_glasses_pixels_are_over_the_eyes_and_nowhere_else(kind):
    bare, worn = _pair("eyewear", "none", kind)
    diff = _diff(bare, worn)
    glasses = worn.masks["glasses"]
    assert "glasses" not in bare.masks and bare.landmarks == worn.landmarks
    assert diff[~_grow(glasses, 3)].max() == 0  # nothing changes outside the glasses
    assert (diff[glasses > 0.5] > 12).mean() > 0.3  # and the glasses are visible
    for x, y in worn.landmarks[:2]:  # both eyes are behind a lens
        assert glasses[int(y), int(x)] > 0.5


def test_expression_changes_only_the_face_and_each_expression_looks_different():
    cfg = SynthConfig(size=SIZE, seed=2, one_factor="expression")
    outs = [render(*draw(cfg, 1, 0, e), SIZE, keep_masks=True) for e in EXPRESSIONS]
    head = _grow(outs[0].masks["head"], 2)
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            d = _diff(outs[i], outs[j])
            assert d[~head].max() == 0
            assert (d > 25).sum() > 20, (EXPRESSIONS[i], EXPRESSIONS[j])


def test_skin_tone_changes_only_skin_pixels():
    light, dark = _pair("skin_tone", "1", "6")
    skin = _grow(np.maximum.reduce([light.masks["head"], light.masks["ears"], light.masks["neck"]]), 3)
    d = _diff(light, dark)
    assert d[~skin].max() == 0 and (d[skin] > 40).mean() > 0.3
    assert light.image[skin].mean() > dark.image[skin].mean() + 40


@pytest.mark.parametrize("factor", sorted(FACTORS))
def test_one_factor_groups_differ_only_in_their_factor(factor):
    recs = list(generate(SynthConfig(n_identities=1, per_identity=1, size=SIZE, seed=3, one_factor=factor), workers=1))
    assert [r.meta["probe_value"] for r in recs] == list(FACTORS[factor])
    assert len({r.meta["probe_group"] for r in recs}) == 1 and all(r.meta["probe_factor"] == factor for r in recs)
    base = recs[0].attrs()
    allowed = FACTOR_LABELS[factor] | {"hair_color"}
    images = {np.asarray(r.image).tobytes() for r in recs}
    assert len(images) == len(recs)  # every value changes the pixels
    for r in recs[1:]:
        other = r.attrs()
        changed = {
            n for n in set(base) | set(other) if (base.get(n) and base[n].value) != (other.get(n) and other[n].value)
        }
        assert changed <= allowed, changed
        assert changed, f"{factor}={r.meta['probe_value']} changed no label"
        if factor not in ("gender_presentation",):  # presentation changes jaw width, hence the box
            assert r.box == recs[0].box and r.landmarks == recs[0].landmarks or factor == "expression"


def test_every_value_is_reachable_by_sampling_and_by_one_factor_mode():
    seen: dict[str, set[str]] = {
        k: set()
        for k in (
            "expression",
            "skin_tone",
            "hair_color",
            "hair_length",
            "gender_presentation",
            "eyewear",
            "facial_hair",
        )
    }
    for i in range(400):
        ident = sample_identity(np.random.default_rng([0, i]), "x")
        scene = sample_scene(np.random.default_rng([0, i, 1]), ident)
        for k in seen:
            seen[k].add(getattr(scene, k, None) or getattr(ident, k, None))
    assert seen["expression"] == set(EXPRESSIONS) and seen["eyewear"] == set(EYEWEAR)
    assert seen["facial_hair"] == set(FACIAL_HAIR)
    for k in ("skin_tone", "hair_color", "hair_length", "gender_presentation"):
        assert seen[k] == set(VOCABULARY[k].values), k
    ident = sample_identity(np.random.default_rng(0), "x")
    scene = sample_scene(np.random.default_rng(1), ident)
    for factor, values in FACTORS.items():
        for v in values:
            i2, s2 = vary(ident, scene, factor, v)
            assert (dataclasses.asdict(i2), dataclasses.asdict(s2)) != (
                dataclasses.asdict(ident),
                dataclasses.asdict(scene),
            ) or v in (str(getattr(ident, factor, "")), str(getattr(scene, factor, "")).lower())


def test_bad_configuration_is_a_facevlm_error():
    with pytest.raises(FacevlmError, match="one_factor"):
        list(generate(SynthConfig(one_factor="nose")))
    with pytest.raises(FacevlmError, match="size"):
        list(generate(SynthConfig(size=64)))
    ident = sample_identity(np.random.default_rng(0), "x")
    with pytest.raises(FacevlmError, match="skin_tone"):
        vary(ident, sample_scene(np.random.default_rng(1), ident), "skin_tone", "7")


def test_colour_tables_cover_the_vocabulary():
    from facevlm.data.synth.identity import HAIR_RGB, SKIN_RGB

    assert set(HAIR_RGB) == set(VOCABULARY["hair_color"].values)
    assert set(SKIN_RGB) == set(VOCABULARY["skin_tone"].values)
    lum = [sum(SKIN_RGB[t]) for t in VOCABULARY["skin_tone"].values]
    assert lum == sorted(lum, reverse=True)  # 1 = lightest ... 6 = darkest
