"""The hand-labelled real photos: `data/real/labels.jsonl` over the files of the `real-photos` and `samples` assets.

One label line is one face, in the protocol of data/cards/real.md: the archive member it is in
(`source_package`, `source_path`, `video_frame` for video frames), its box in original-file pixels, and
hand labels for expression, smiling, mouth, eyewear, facial hair, hat, pose, identity and (sensitive)
apparent gender presentation / age group. `RealLabel` is the schema every line must pass; the adapter
turns a line into a FaceRecord with ground-truth attributes in the schema vocabulary (mapping in the
card: only what a label implies is set, so e.g. "some facial hair" asserts no beard either way).

Split by identity, stable when labels are added: the identities of the first labelled batch (already
used to measure the shipped models) are dev; every other identity goes to dev when a salted hash of its
name falls below `dev_share`, so a new face never moves an old one between splits. Nothing should train
on `dev`.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from facevlm import paths
from facevlm.data.adapters.base import Adapter, ImportSummary, check_split, try_image
from facevlm.errors import DataError
from facevlm.image import open_image
from facevlm.schema import EXPRESSIONS, AttributeValue, FaceRecord

LABELS = paths.REPO_ROOT / "data" / "real" / "labels.jsonl"
ASSETS = ("real-photos", "samples")  # where a labelled file may be, in lookup order
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".webm")
FIRST_BATCH = "shared-real-dev"  # the 34 faces of ../shared/real-dev: measured on before, so always dev
SPLIT_SALT = "facevlm-real-v1"

EXPRESSION_LABELS = (*EXPRESSIONS, "unclear")
EYEWEAR = ("none", "glasses", "sunglasses")
PRESENTATIONS = ("masculine", "feminine", "unclear")
AGE_GROUPS = ("child", "young_adult", "adult", "senior")
HEAD_POSES = ("frontal", "turned")
_PACKAGE = re.compile(r"^(npm:(@[\w.-]+/)?[\w.-]+@[\w.+-]+|[\w.-]+==[\w.+!-]+)$")
_IDENTITY = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RealLabel:
    """One labelled face (one line of labels.jsonl), validated on construction (ValueError)."""

    source_package: str  # "name==version" (PyPI) or "npm:name@version"
    source_path: str  # the archive member as listed in the archive
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the upright original file
    image_size: tuple[int, int]  # width, height of that image (the video frame for videos)
    identity: str  # a name the package or file states, else unknown_NN (unique in the file)
    expression: str
    smiling: bool
    mouth_open: bool
    eyeglasses: str
    facial_hair: bool
    hat: bool
    apparent_gender_presentation: str  # sensitive
    apparent_age_group: str  # sensitive
    head_pose: str
    notes: str
    licence: str  # the licence the asset registry records for the file
    file_sha256: str  # of the archive member (for videos: of the video file)
    batch: str  # which labelling round the face came from
    video_frame: int | None = None  # 0-based, decoded sequentially with OpenCV
    detector_miss: bool = False  # the shipped detector finds no box with IoU >= 0.5 (see detector_note)
    detector_note: str = ""

    def __post_init__(self) -> None:
        if not _PACKAGE.match(self.source_package):
            raise ValueError(f"source_package {self.source_package!r} is neither name==version nor npm:name@version")
        if not self.source_path or self.source_path.startswith("/") or ".." in self.source_path.split("/"):
            raise ValueError(f"source_path {self.source_path!r} is not a relative archive member path")
        w, h = self.image_size
        if w < 1 or h < 1:
            raise ValueError(f"image_size {list(self.image_size)} is not a positive width and height")
        x0, y0, x1, y1 = self.box
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise ValueError(f"box {list(self.box)} is not inside the {w}x{h} image with x0 < x1, y0 < y1")
        if not _IDENTITY.match(self.identity):
            raise ValueError(f"identity {self.identity!r} is not lower_snake_case")
        for name, allowed in (
            ("expression", EXPRESSION_LABELS),
            ("eyeglasses", EYEWEAR),
            ("apparent_gender_presentation", PRESENTATIONS),
            ("apparent_age_group", AGE_GROUPS),
            ("head_pose", HEAD_POSES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if not self.licence.strip() or not self.batch.strip() or not self.notes.strip():
            raise ValueError("licence, batch and notes must not be empty")
        if not _SHA256.match(self.file_sha256):
            raise ValueError(f"file_sha256 {self.file_sha256!r} is not 64 lower-case hex digits")
        is_video = self.source_path.lower().endswith(VIDEO_SUFFIXES)
        if is_video != (self.video_frame is not None) or (self.video_frame is not None and self.video_frame < 0):
            raise ValueError("video_frame (>= 0) is required for a video member and only for one")
        if self.detector_miss != bool(self.detector_note.strip()):
            raise ValueError("detector_miss: true needs a detector_note saying what the detector found, and only then")

    @property
    def file_key(self) -> str:
        return f"{self.source_package}/{self.source_path}"

    @property
    def image_key(self) -> str:
        """The picture the face is in: the file, or one frame of a video."""
        return self.file_key if self.video_frame is None else f"{self.file_key}@{self.video_frame}"


_TYPES = {f.name: f.type for f in fields(RealLabel)}  # annotations as strings ("bool", "str", ...)
_REQUIRED = [f.name for f in fields(RealLabel) if f.default is MISSING]


def parse_label(obj: Any) -> RealLabel:
    """A RealLabel from one decoded JSON line; ValueError naming the first problem."""
    if not isinstance(obj, dict):
        raise ValueError("a line must be a JSON object")
    unknown = sorted(set(obj) - set(_TYPES))
    missing = [k for k in _REQUIRED if k not in obj]
    if unknown or missing:
        raise ValueError(f"unknown field(s) {unknown}" if unknown else f"missing field(s) {missing}")
    values = dict(obj)
    for key, kind in _TYPES.items():
        if key not in values:
            continue
        value = values[key]
        if kind == "bool" and not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, not {value!r}")
        if kind == "str" and not isinstance(value, str):
            raise ValueError(f"{key} must be a string, not {value!r}")
    box, size, frame = values["box"], values["image_size"], values.get("video_frame")
    if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
        raise ValueError(f"box must be 4 numbers, not {box!r}")
    if not (
        isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
    ):
        raise ValueError(f"image_size must be 2 integers, not {size!r}")
    if frame is not None and (not isinstance(frame, int) or isinstance(frame, bool)):
        raise ValueError(f"video_frame must be an integer, not {frame!r}")
    values["box"], values["image_size"] = tuple(float(v) for v in box), tuple(size)
    return RealLabel(**values)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def read_labels(path: str | Path = LABELS) -> list[RealLabel]:
    """Every line of a labels file, validated one by one and across lines; DataError `file:line: problem`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such labels file")
    labels: list[RealLabel] = []
    where: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            labels.append(parse_label(json.loads(line)))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise DataError(f"{path}:{n}: {exc}") from None
        where.append(f"{path}:{n}")
    problem = cross_check(labels)
    if problem is not None:
        index, message = problem
        raise DataError(f"{where[index]}: {message}")
    return labels


def cross_check(labels: Sequence[RealLabel]) -> tuple[int, str] | None:
    """(index, problem) of the first line that contradicts an earlier one, else None: one file has one
    sha256, licence and frame size; no face is labelled twice; an unknown_NN identity named in two
    labelling rounds must be in one file (more frames of the same video), since each round numbered
    its unknowns on its own."""
    per_file: dict[str, RealLabel] = {}
    per_image: dict[str, list[RealLabel]] = {}
    unknown: dict[str, RealLabel] = {}
    for i, label in enumerate(labels):
        first = per_file.setdefault(label.file_key, label)
        for name in ("file_sha256", "licence", "image_size"):
            if getattr(label, name) != getattr(first, name):
                return i, f"{name} differs from an earlier line for {label.file_key}"
        if label.identity.startswith("unknown_"):
            seen = unknown.setdefault(label.identity, label)
            if seen.batch != label.batch and seen.file_key != label.file_key:
                return i, f"{label.identity} is also used in batch {seen.batch} for another file, {seen.file_key}"
        for other in per_image.setdefault(label.image_key, []):
            if box_iou(label.box, other.box) > 0.7:
                return i, f"the same face is labelled twice in {label.image_key} (IoU > 0.7)"
        per_image[label.image_key].append(label)
    return None


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def attributes(label: RealLabel) -> list[AttributeValue]:
    """Ground truth in the schema vocabulary, only where the hand label implies the schema's value.

    eyewear: CelebA's Eyeglasses counts sunglasses too (as the synthetic labels do) and `sunglasses` is
    the dark kind; no facial hair at all means no beard, moustache, goatee or stubble, but "some facial
    hair" does not say which, so it sets nothing; the protocol's age groups do not fit the schema's
    decade bins, only `Young` (child / young adult vs older); head pose "frontal" (yaw under ~25-30
    degrees) is no yaw value, so pose stays in `meta["hand_labels"]` only.
    """
    out: dict[str, Any] = {
        "Smiling": label.smiling,
        "Mouth_Slightly_Open": label.mouth_open,
        "Eyeglasses": label.eyeglasses != "none",
        "sunglasses": label.eyeglasses == "sunglasses",
        "Wearing_Hat": label.hat,
        "Young": label.apparent_age_group in ("child", "young_adult"),
    }
    if label.expression != "unclear":
        out["expression"] = label.expression
    if not label.facial_hair:
        out.update({"No_Beard": True, "Mustache": False, "Goatee": False, "5_o_Clock_Shadow": False})
    if label.apparent_gender_presentation != "unclear":
        out["gender_presentation"] = label.apparent_gender_presentation
        out["Male"] = label.apparent_gender_presentation == "masculine"
    return [AttributeValue(name, str(v).lower() if isinstance(v, bool) else v, "gt") for name, v in out.items()]


def assign_split(label: RealLabel, dev_identities: set[str], dev_share: float) -> str:
    """ "dev" or "train" for the face's identity (see the module docstring)."""
    if label.identity in dev_identities:
        return "dev"
    digest = hashlib.sha256(f"{SPLIT_SALT}:{label.identity}".encode()).digest()
    return "dev" if int.from_bytes(digest[:4], "big") / 2**32 < dev_share else "train"


def licence_excluded(licence: str, excluded: Sequence[str]) -> str | None:
    """The entry of `excluded` that `licence` falls under, else None. An SPDX id covers its -only /
    -or-later variants and never a longer name: GPL-3.0 excludes GPL-3.0-only, not LGPL-3.0 or AGPL-3.0."""
    tokens = re.findall(r"[A-Za-z0-9.+-]+", licence)
    for entry in excluded:
        if any(tok == entry or tok.startswith(entry + "-") for tok in tokens):
            return entry
    return None


class Real(Adapter):
    name = "real"
    title = "hand-labelled real photos"
    licence = "per file (data/real/labels.jsonl, from the asset registry)"
    splits = ("all", "train", "dev")

    def __init__(
        self,
        root: str | Path | None = None,
        labels: str | Path = "",
        exclude_licences: Any = (),
        dev_share: float | str = 0.4,
    ):
        """`root`: a folder holding `real-photos/` and `samples/` as fetched (default: the fetched assets);
        `labels`: the labels file (default data/real/labels.jsonl); `exclude_licences`: SPDX ids (a list
        or "GPL-3.0,AGPL-3.0") whose files are left out; `dev_share`: hash share of new identities in dev."""
        self.fetched = root in (None, "")
        if self.fetched:
            from facevlm.assets import path as asset_path

            for name in ASSETS:
                asset_path(name)  # AssetError naming the fetch command before anything is read
        super().__init__(paths.assets_dir() if self.fetched else root)
        self.labels_path = Path(labels).expanduser() if labels else LABELS
        if isinstance(exclude_licences, str):
            exclude_licences = exclude_licences.split(",")
        self.exclude = [e.strip() for e in exclude_licences if e.strip()]
        self.dev_share = float(dev_share)
        if not 0.0 <= self.dev_share <= 1.0:
            raise DataError(f"real: dev_share must lie in [0, 1], not {self.dev_share}")

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        check_split(self, split)
        labels = read_labels(self.labels_path)
        dev = {lb.identity for lb in labels if lb.batch == FIRST_BATCH}
        faces_in = Counter(lb.image_key for lb in labels)
        by_file: dict[str, list[tuple[int, RealLabel]]] = {}
        for n, label in enumerate(labels):
            by_file.setdefault(label.file_key, []).append((n, label))
        for file_key, group in by_file.items():
            wanted = [(n, lb, assign_split(lb, dev, self.dev_share)) for n, lb in group]
            wanted = [(n, lb, s) for n, lb, s in wanted if split in ("all", s)]
            rule = licence_excluded(group[0][1].licence, self.exclude)
            if rule is not None:
                summary.skipped[f"licence {rule} excluded"] += len(wanted)
                continue
            if wanted:
                yield from self._file_records(file_key, wanted, faces_in, summary)

    def _file_records(
        self, file_key: str, wanted: list[tuple[int, RealLabel, str]], faces_in: Counter, summary: ImportSummary
    ) -> Iterator[FaceRecord]:
        first = wanted[0][1]
        where = f"{self.labels_path}:{file_key}"
        path = self._file(first, where, summary)
        if path is None:
            return
        if first.video_frame is None:
            image = try_image(path, where, summary)
            pictures = {None: image} if image is not None else {}
        else:
            pictures = video_frames(path, {lb.video_frame for _, lb, _ in wanted}, where, summary)
        sizes: dict[int | None, tuple[int, int]] = {}
        for n, label, split in wanted:
            image = pictures.get(label.video_frame)
            if image is None:
                continue
            size = sizes.setdefault(label.video_frame, open_image(image).size)
            if size != label.image_size:
                summary.skip(where, "image size differs from the label", f"{size} vs {label.image_size}")
                continue
            yield self._record(n, label, image, split, faces_in[label.image_key])

    def _file(self, label: RealLabel, where: str, summary: ImportSummary) -> Path | None:
        """The fetched file a label points at, found through the asset registry (pinned sha256)."""
        from facevlm.assets import path as asset_path
        from facevlm.assets import registry

        for name in ASSETS:
            member = registry.get(name).member(label.source_package, label.source_path)
            if member is None:
                continue
            if member.sha256 != label.file_sha256:
                summary.skip(where, "file sha256 differs from the asset registry")
                return None
            path = (asset_path(name) if self.fetched else self.root / name) / member.dest
            if not path.is_file():  # an optional npm source that was skipped at fetch time
                summary.skip(where, "file not fetched", f"run `facevlm assets fetch {name}`")
                return None
            return path
        summary.skip(where, "file not in the asset registry", f"add it to {', '.join(ASSETS)}")
        return None

    def _record(self, n: int, label: RealLabel, image: dict[str, Any], split: str, n_faces: int) -> FaceRecord:
        hand = {
            k: getattr(label, k)
            for k in ("expression", "smiling", "mouth_open", "eyeglasses", "facial_hair", "hat", "head_pose")
        }
        meta = {
            "source_package": label.source_package,
            "source_path": label.source_path,
            "file_sha256": label.file_sha256,
            "batch": label.batch,
            "label_index": n + 1,
            "hand_labels": hand,
            "detector_miss": label.detector_miss,
        }
        if label.video_frame is not None:
            meta["video_frame"] = label.video_frame
        record = self.record(
            f"{label.image_key}#{n + 1}",
            image,
            split,
            box=list(label.box),
            n_faces=n_faces,
            identity=f"real:{label.identity}",
            image_key=f"real/{label.image_key}",
            meta=meta,
        )
        record.licence = label.licence
        record.attributes = attributes(label)
        return record


def video_frames(path: Path, wanted: set[int], where: str, summary: ImportSummary) -> dict[int, dict[str, Any]]:
    """The `wanted` frames of a video as PNG bytes, decoded sequentially from the start with OpenCV (as
    the labels were made: seeking is not frame-exact in every container)."""
    import cv2
    from PIL import Image

    cap = cv2.VideoCapture(str(path))
    out: dict[int, dict[str, Any]] = {}
    try:
        index = 0
        while index <= max(wanted) and cap.isOpened():
            ok, frame = cap.read()
            if not ok:
                break
            if index in wanted:
                buf = io.BytesIO()
                Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).save(buf, format="PNG")
                out[index] = {"bytes": buf.getvalue(), "path": None}
            index += 1
    finally:
        cap.release()
    for missing in sorted(wanted - set(out)):
        summary.skip(f"{where} frame {missing}", "unreadable video frame")
    return out


def best_ious(records: Sequence[FaceRecord], detector: Any) -> list[float]:
    """Per record, the best IoU of its labelled box with any face `detector` (a vision.detect.FaceDetector)
    keeps in the record's image; each picture is detected once."""
    order = list(dict.fromkeys(r.image_key for r in records))
    first = {key: next(r.image for r in records if r.image_key == key) for key in order}
    found = dict(zip(order, detector.detect_batch([open_image(first[key]) for key in order])))
    return [max((box_iou(r.box, d.box) for d in found[r.image_key]), default=0.0) for r in records]
