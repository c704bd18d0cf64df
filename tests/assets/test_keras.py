"""The Keras converter (assets, no torch) and the torch loader (vision.fer) agree on what a converted
folder holds: `state_shapes` is exactly the state dict KerasGraphNet builds, for every layer type."""

from __future__ import annotations

import pytest

from facevlm.assets.keras import KerasGraphConfig, layer_channels, state_shapes
from facevlm.errors import FacevlmError


def _spec(kind: str, name: str, inputs: list[str], **config) -> dict:
    return {"name": name, "type": kind, "inputs": inputs, "config": config}


GRAPH = KerasGraphConfig(
    layers=[
        _spec("InputLayer", "in", []),
        _spec("Conv2D", "conv", ["in"], filters=6, kernel_size=[3, 5], strides=[2, 2], padding="same"),
        _spec("BatchNormalization", "bn", ["conv"], epsilon=0.001),
        _spec("DepthwiseConv2D", "dw", ["bn"], kernel_size=3, depth_multiplier=2, use_bias=True, padding="same"),
        _spec("SeparableConv2D", "sep", ["dw"], filters=5, kernel_size=[3, 3], depth_multiplier=3, use_bias=True),
        _spec("AveragePooling2D", "avg", ["sep"], pool_size=[2, 2], padding="same"),
        _spec("Conv2D", "nobias", ["avg"], filters=4, kernel_size=[1, 1], use_bias=False),
        _spec("GlobalAveragePooling2D", "gap", ["nobias"]),
        _spec("Activation", "out", ["gap"], activation="softmax"),
    ],
    inputs=["in"],
    outputs=["out"],
    input_size=(17, 17),
    channels=3,
    labels=("a", "b", "c", "d"),
)


def test_state_shapes_are_the_torch_network_state_dict():
    import torch

    from facevlm.vision.fer import KerasGraphNet

    net = KerasGraphNet(GRAPH)
    built = {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert state_shapes(GRAPH) == built
    assert layer_channels(GRAPH) == {
        "in": 3,
        "conv": 6,
        "bn": 6,
        "dw": 12,
        "sep": 5,
        "avg": 5,
        "nobias": 4,
        "gap": 4,
        "out": 4,
    }
    assert net.eval()(torch.zeros(2, 3, 17, 17)).shape == (2, 4)


def test_unsupported_layer_is_named():
    bad = KerasGraphConfig(
        layers=[_spec("InputLayer", "in", []), _spec("LSTM", "rnn", ["in"])], inputs=["in"], outputs=["rnn"]
    )
    with pytest.raises(FacevlmError, match="layer rnn: Keras layer type LSTM is not supported"):
        state_shapes(bad)
