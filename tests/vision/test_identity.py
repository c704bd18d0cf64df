"""The identity expert: dlib's ResNet on the 5-point aligned face says who is who on the real sample photos,
reuses the pipeline's landmarks (or predicts the same ones in the box), and is pluggable by name."""

from __future__ import annotations

import numpy as np
import pytest

from facevlm.errors import FacevlmError
from facevlm.image import open_image
from facevlm.vision.identity import (
    DEFAULT_IDENTITY_MODEL,
    FacePlace,
    load_identity_model,
    register_identity_model,
)
from facevlm.vision.pipeline import FacePipeline, PipelineConfig


@pytest.fixture(scope="module")
def faces(sample_path):
    pipeline = FacePipeline(PipelineConfig(expression=False))
    return {name: pipeline.run(open_image(sample_path(name))) for name in ("obama.jpg", "obama2.jpg", "biden.jpg")}


def test_dlib_resnet_tells_people_apart_on_real_photos(faces):
    model = load_identity_model()
    assert (model.name, model.dim, model.threshold) == (DEFAULT_IDENTITY_MODEL, 128, 0.6)
    assert "99.38%" in model.threshold_source and "dnn_face_recognition_ex.cpp" in model.threshold_source
    vec = {}
    for name, found in faces.items():
        assert len(found) == 1 and len(found[0].landmarks) == 5
        out = model.embed(found[0].image, found)
        assert out.shape == (1, 128) and out.dtype == np.float32
        vec[name] = out[0]
    same = np.linalg.norm(vec["obama.jpg"] - vec["obama2.jpg"])
    different = min(np.linalg.norm(vec["biden.jpg"] - vec[n]) for n in ("obama.jpg", "obama2.jpg"))
    assert same < model.threshold < different
    assert 1.2 < np.linalg.norm(vec["obama.jpg"]) < 1.6  # raw descriptors, the units of dlib's 0.6


def test_landmarks_are_reused_or_predicted_alike(faces):
    model = load_identity_model()
    face = faces["obama.jpg"][0]
    from_pipeline = model.embed(face.image, [face])
    in_box = model.embed(face.image, [FacePlace(face.box)])  # no landmarks: dlib's predictor in the same box
    other_format = model.embed(face.image, [FacePlace(face.box, face.landmarks, "arcface5")])
    np.testing.assert_array_equal(from_pipeline, in_box)
    np.testing.assert_array_equal(from_pipeline, other_format)
    assert model.embed(face.image, []).shape == (0, 128)
    whole = model.embed(np.zeros((12, 9, 3), np.uint8), [FacePlace()])  # a tiny crop used whole still works
    assert whole.shape == (1, 128) and np.isfinite(whole).all()


class ToyIdentity:
    """A stand-in plug-in: what a user's ArcFace class looks like to facevlm."""

    name = "toy"
    dim = 4
    threshold = 0.5
    threshold_source = "test"

    def __init__(self, weights: str | None = None):
        self.weights = weights

    def embed(self, image, faces):
        return np.ones((len(faces), self.dim), np.float32)


def test_identity_models_are_pluggable_by_name():
    register_identity_model("toy-test", f"{__name__}:ToyIdentity")
    toy = load_identity_model("toy-test", "w")
    assert toy.name == "toy-test" and toy.weights == "w" and toy.embed(None, [FacePlace()]).shape == (1, 4)
    direct = load_identity_model(f"{__name__}:ToyIdentity")
    assert direct.name == f"{__name__}:ToyIdentity"  # the string that loads it again is what galleries record
    with pytest.raises(FacevlmError, match="is not one of dlib-resnet-v1"):
        load_identity_model("arcface-r100")
    with pytest.raises(FacevlmError, match="cannot import"):
        load_identity_model("no_such_module_xyz:Model")
    with pytest.raises(FacevlmError, match="module:attribute"):
        register_identity_model("bad", "no-colon")
