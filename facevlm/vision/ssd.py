"""The OpenCV res10 SSD face detector run in torch, read straight from its Caffe files.

OpenCV 5 removed the Caffe importer (`cv2.dnn.readNetFromCaffe`), and the res10 model ships only as
Caffe `deploy.prototxt` + `.caffemodel`. Rather than pinning an old OpenCV for one file format, this module
reads both files itself (the prototxt with a small text-format parser, the weights with `protobuf`
messages declared here for the four fields needed) and runs the graph in torch: batched, on any device,
and identical to OpenCV 4's output (tests/vision/test_detect.py checks boxes and scores against it).

Only the layer types this SSD uses are implemented; anything else is an error naming the layer.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facevlm.errors import AssetError, FacevlmError

_TOKEN = re.compile(r'#[^\n]*|(\w+)\s*:\s*("(?:[^"\\]|\\.)*"|[^\s{}#]+)|(\w+)\s*\{|(\})')


def parse_prototxt(text: str, where: str = "prototxt") -> dict[str, list[Any]]:
    """Protobuf text format -> nested dicts of key -> list of values (every field may repeat)."""
    stack: list[dict[str, list[Any]]] = [{}]
    for match in _TOKEN.finditer(text):
        key, value, block, close = match.groups()
        if key:
            value = value[1:-1] if value.startswith('"') else _number(value)
            stack[-1].setdefault(key, []).append(value)
        elif block:
            child: dict[str, list[Any]] = {}
            stack[-1].setdefault(block, []).append(child)
            stack.append(child)
        elif close:
            if len(stack) == 1:
                raise FacevlmError(f"{where}:{text.count(chr(10), 0, match.start()) + 1}: unbalanced '}}'")
            stack.pop()
    if len(stack) != 1:
        raise FacevlmError(f"{where}: unclosed '{{' at end of file")
    return stack[0]


def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)  # enums (MAX, SUM, CENTER_SIZE) stay strings


@lru_cache(maxsize=1)
def _caffe_messages() -> Any:
    """NetParameter with only name/type/blobs declared (field numbers from caffe.proto); protobuf skips
    every other field of the file, so the full caffe.proto and protoc are not needed."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="facevlm_caffe_min.proto", package="facevlm_caffe", syntax="proto2")
    T = descriptor_pb2.FieldDescriptorProto

    def message(name: str, fields: list[tuple[str, int, int, int, str | None]]) -> None:
        msg = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = f".facevlm_caffe.{type_name}"

    rep, opt = T.LABEL_REPEATED, T.LABEL_OPTIONAL
    message("BlobShape", [("dim", 1, T.TYPE_INT64, rep, None)])
    message(
        "BlobProto",
        [
            ("num", 1, T.TYPE_INT32, opt, None),
            ("channels", 2, T.TYPE_INT32, opt, None),
            ("height", 3, T.TYPE_INT32, opt, None),
            ("width", 4, T.TYPE_INT32, opt, None),
            ("data", 5, T.TYPE_FLOAT, rep, None),
            ("shape", 7, T.TYPE_MESSAGE, opt, "BlobShape"),
        ],
    )
    message(
        "LayerParameter",
        [
            ("name", 1, T.TYPE_STRING, opt, None),
            ("type", 2, T.TYPE_STRING, opt, None),
            ("blobs", 7, T.TYPE_MESSAGE, rep, "BlobProto"),
        ],
    )
    message(
        "NetParameter", [("name", 1, T.TYPE_STRING, opt, None), ("layer", 100, T.TYPE_MESSAGE, rep, "LayerParameter")]
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("facevlm_caffe.NetParameter"))


def read_caffemodel(path: Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> its weight blobs, shaped as stored."""
    from google.protobuf.message import DecodeError

    net = _caffe_messages()()
    try:
        net.ParseFromString(Path(path).read_bytes())
    except DecodeError as exc:
        raise AssetError(f"{path}: not a Caffe model ({exc})") from None
    out = {}
    for layer in net.layer:
        blobs = []
        for blob in layer.blobs:
            shape = list(blob.shape.dim) or [d for d in (blob.num, blob.channels, blob.height, blob.width) if d]
            blobs.append(np.asarray(blob.data, dtype=np.float32).reshape(shape))
        if blobs:
            out[layer.name] = blobs
    return out


def _param(layer: dict, block: str, key: str, default: Any) -> Any:
    values = (layer.get(block) or [{}])[0].get(key)
    return values[0] if values else default


def prior_boxes(feature_hw: tuple[int, int], image_hw: tuple[int, int], p: dict) -> np.ndarray:
    """Caffe SSD PriorBox: [2, P*4] (normalised corners, then the variances), in Caffe's order."""
    (fh, fw), (ih, iw) = feature_hw, image_hw
    ratios = [1.0]
    for ar in p.get("aspect_ratio", []):
        if all(abs(ar - r) > 1e-6 for r in ratios):
            ratios.append(float(ar))
            if p.get("flip", [True])[0]:
                ratios.append(1.0 / ar)
    step_h = step_w = float(p["step"][0]) if "step" in p else None
    step_h, step_w = step_h or ih / fh, step_w or iw / fw
    offset = float(p.get("offset", [0.5])[0])
    sizes = []  # (w, h) of the boxes at every location, in Caffe's order
    for k, size in enumerate(p["min_size"]):
        sizes.append((size, size))
        if "max_size" in p:
            sizes.append((math.sqrt(size * p["max_size"][k]),) * 2)
        sizes += [(size * math.sqrt(r), size / math.sqrt(r)) for r in ratios[1:]]
    wh = np.asarray(sizes, dtype=np.float64)[None] / 2  # [1, S, 2]
    ys, xs = np.meshgrid((np.arange(fh) + offset) * step_h, (np.arange(fw) + offset) * step_w, indexing="ij")
    centres = np.stack([xs.ravel(), ys.ravel()], -1)[:, None]  # [L, 1, 2], row-major like Caffe
    scale = np.array([iw, ih], dtype=np.float64)
    boxes = np.concatenate([(centres - wh) / scale, (centres + wh) / scale], -1)  # [L, S, 4]
    coords = boxes.astype(np.float32).reshape(-1)
    if p.get("clip", [False])[0]:
        coords = np.clip(coords, 0.0, 1.0)
    v = np.asarray(p.get("variance", [0.1]), dtype=np.float32)
    return np.stack([coords, np.tile(v if len(v) == 4 else np.repeat(v[:1], 4), len(coords) // 4)])


class CaffeSSD(nn.Module):
    """The res10 SSD graph. `forward(x)` takes [N, 3, H, W] BGR minus the training means and returns
    rows [image_id, label, score, x0, y0, x1, y1] (normalised coordinates), like OpenCV's output."""

    _KNOWN = {
        "Convolution",
        "BatchNorm",
        "Scale",
        "ReLU",
        "Pooling",
        "Eltwise",
        "Normalize",
        "Permute",
        "Flatten",
        "Concat",
        "Reshape",
        "Softmax",
        "PriorBox",
        "DetectionOutput",
    }

    def __init__(self, prototxt: Path, caffemodel: Path):
        super().__init__()
        spec = parse_prototxt(Path(prototxt).read_text(), str(prototxt))
        self.input_name = (spec.get("input") or ["data"])[0]
        self.layers = spec.get("layer", [])
        self._priors: dict[tuple, torch.Tensor] = {}
        weights = read_caffemodel(caffemodel)
        for layer in self.layers:
            name, kind = layer["name"][0], layer["type"][0]
            if kind not in self._KNOWN:
                raise FacevlmError(f"{prototxt}: layer {name}: Caffe layer type {kind} is not supported")
            if kind in ("Convolution", "BatchNorm", "Scale", "Normalize") and name not in weights:
                raise AssetError(f"{caffemodel}: no weights for layer {name}")
        self.folded = self._fold(weights)
        for name, blobs in weights.items():
            for i, blob in enumerate(blobs):
                self.register_buffer(f"{name}__{i}", torch.from_numpy(np.ascontiguousarray(blob)), persistent=False)

    def _fold(self, weights: dict[str, list[np.ndarray]]) -> set[str]:
        """Fold inference-time BatchNorm (+ the Scale right after it) into one affine, and into the
        convolution before it when the conv's output feeds nothing else (Caffe in-place BN): the same
        arithmetic in a third of the passes over memory. Returns the names of layers folded away."""
        folded: set[str] = set()
        for i, layer in enumerate(self.layers):
            if layer["type"][0] != "BatchNorm":
                continue
            name, top = layer["name"][0], layer["top"][0]
            mean, var, factor = weights[name][:3]
            factor = 0.0 if float(factor.reshape(-1)[0]) == 0 else 1.0 / float(factor.reshape(-1)[0])
            a = 1.0 / np.sqrt(var.reshape(-1) * factor + float(_param(layer, "batch_norm_param", "eps", 1e-5)))
            b = -mean.reshape(-1) * factor * a
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if nxt and nxt["type"][0] == "Scale" and nxt["bottom"] == [top]:
                gamma, *beta = weights[nxt["name"][0]]
                a, b = a * gamma.reshape(-1), b * gamma.reshape(-1) + (beta[0].reshape(-1) if beta else 0.0)
                folded.add(nxt["name"][0])
            prev = self.layers[i - 1] if i else None
            if prev and prev["type"][0] == "Convolution" and layer["bottom"] == [top] == prev["top"]:
                conv = weights[prev["name"][0]]
                bias = conv[1].reshape(-1) if len(conv) > 1 else np.zeros_like(a)
                weights[prev["name"][0]] = [conv[0] * a[:, None, None, None], bias * a + b]
                prev.setdefault("convolution_param", [{}])[0]["bias_term"] = [True]
                folded.add(name)
            else:
                weights[name] = [a.astype(np.float32), b.astype(np.float32)]
        return folded

    def _blob(self, name: str, i: int) -> torch.Tensor:
        return getattr(self, f"{name}__{i}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for layer in self.layers:
            name, kind = layer["name"][0], layer["type"][0]
            if name in self.folded:
                values[layer["top"][0]] = values[layer["bottom"][0]]
                continue
            args = [values[b] for b in layer.get("bottom", [])]
            values[layer["top"][0]] = self._run(name, kind, layer, args, x.shape[-2:])
        return values[self.layers[-1]["top"][0]]

    def _run(self, name: str, kind: str, layer: dict, args: list[torch.Tensor], image_hw) -> torch.Tensor:
        x = args[0]
        if kind == "Convolution":
            conv = {
                key: _param(layer, "convolution_param", key, default)
                for key, default in (("bias_term", True), ("stride", 1), ("pad", 0), ("dilation", 1), ("group", 1))
            }
            bias = self._blob(name, 1) if conv["bias_term"] else None
            return F.conv2d(x, self._blob(name, 0), bias, conv["stride"], conv["pad"], conv["dilation"], conv["group"])
        if kind == "BatchNorm":  # folded into (a, b) by _fold
            return torch.addcmul(self._blob(name, 1).view(1, -1, 1, 1), x, self._blob(name, 0).view(1, -1, 1, 1))
        if kind == "Scale":
            y = x * self._blob(name, 0).view(1, -1, 1, 1)
            return y + self._blob(name, 1).view(1, -1, 1, 1) if _param(layer, "scale_param", "bias_term", False) else y
        if kind == "ReLU":
            slope = float(_param(layer, "relu_param", "negative_slope", 0.0))
            return F.relu(x) if slope == 0 else F.leaky_relu(x, slope)
        if kind == "Pooling":
            k, s, p = (
                _param(layer, "pooling_param", key, d) for key, d in (("kernel_size", 1), ("stride", 1), ("pad", 0))
            )
            pool = F.max_pool2d if _param(layer, "pooling_param", "pool", "MAX") == "MAX" else F.avg_pool2d
            return pool(x, k, s, p, ceil_mode=True)  # Caffe rounds pooled sizes up
        if kind == "Eltwise":
            return torch.stack(args).sum(0)
        if kind == "Normalize":
            norm = torch.sqrt(x.pow(2).sum(1, keepdim=True) + float(_param(layer, "norm_param", "eps", 1e-10)))
            return x / norm * self._blob(name, 0).view(1, -1, 1, 1)
        if kind == "Permute":
            return x.permute(*layer["permute_param"][0]["order"])
        if kind == "Flatten":
            return x.flatten(_param(layer, "flatten_param", "axis", 1))
        if kind == "Concat":
            return torch.cat(args, _param(layer, "concat_param", "axis", 1))
        if kind == "Reshape":
            dims = layer["reshape_param"][0]["shape"][0]["dim"]
            return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(dims)])
        if kind == "Softmax":
            return torch.softmax(x, _param(layer, "softmax_param", "axis", 1))
        if kind == "PriorBox":
            key = (name, tuple(x.shape[-2:]), tuple(image_hw), x.device)
            if key not in self._priors:  # depends only on shapes: computed once per input size
                boxes = prior_boxes(key[1], key[2], layer["prior_box_param"][0])
                self._priors[key] = torch.from_numpy(boxes).to(x.device)[None]
            return self._priors[key]
        return self._detections(layer["detection_output_param"][0], *args)

    @staticmethod
    def _detections(p: dict, loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
        """Caffe DetectionOutput (CENTER_SIZE decoding, shared locations, greedy NMS per class)."""
        from torchvision.ops import nms

        n, classes = loc.shape[0], int(p["num_classes"][0])
        nms_p = p.get("nms_param", [{}])[0]
        threshold, top_k = float(nms_p.get("nms_threshold", [0.3])[0]), int(nms_p.get("top_k", [-1])[0])
        keep_top_k, min_conf = int(p.get("keep_top_k", [-1])[0]), float(p.get("confidence_threshold", [0.0])[0])
        background = int(p.get("background_label_id", [0])[0])
        prior, var = priors[0, 0].view(-1, 4), priors[0, 1].view(-1, 4)
        pw, ph = prior[:, 2] - prior[:, 0], prior[:, 3] - prior[:, 1]
        pcx, pcy = (prior[:, 0] + prior[:, 2]) / 2, (prior[:, 1] + prior[:, 3]) / 2
        d = loc.view(n, -1, 4)
        cx, cy = var[:, 0] * d[..., 0] * pw + pcx, var[:, 1] * d[..., 1] * ph + pcy
        w, h = torch.exp(var[:, 2] * d[..., 2]) * pw, torch.exp(var[:, 3] * d[..., 3]) * ph
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
        scores = conf.view(n, -1, classes)
        rows = []
        for i in range(n):
            found = []
            for c in range(classes):
                if c == background:
                    continue
                s = scores[i, :, c]
                idx = torch.nonzero(s > min_conf).flatten()
                idx = idx[s[idx].argsort(descending=True)][: top_k if top_k > 0 else None]
                kept = idx[nms(boxes[i, idx], s[idx], threshold)]
                found.append(
                    torch.cat(
                        [
                            torch.full((len(kept), 1), float(i)),
                            torch.full((len(kept), 1), float(c)),
                            s[kept, None],
                            boxes[i, kept],
                        ],
                        1,
                    )
                )
            image_rows = torch.cat(found) if found else loc.new_zeros((0, 7))
            order = image_rows[:, 2].argsort(descending=True)
            rows.append(image_rows[order][: keep_top_k if keep_top_k > 0 else None])
        return torch.cat(rows) if rows else loc.new_zeros((0, 7))
