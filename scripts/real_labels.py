"""Maintain data/real/labels.jsonl: merge a labelling round, mark detector misses, print the counts.

From the repo root, after `facevlm assets fetch real-photos samples`:

    .venv/bin/python scripts/real_labels.py merge BATCH DIR   # append DIR/labels.jsonl as batch BATCH
    .venv/bin/python scripts/real_labels.py mark              # re-run the detector, set detector_miss
    .venv/bin/python scripts/real_labels.py stats             # counts per split and label

`merge` takes a labeller's lines (the protocol of data/cards/real.md), checks each file against the
asset registry (the member must be pinned there; DIR/packages.json, when present, must agree on its
sha256), sets `licence` and `file_sha256` from the registry (the one record of both), renames the
round's unknown_NN identities to numbers not used yet (each round counts from 01), validates the whole
file and only then writes it. `mark` runs the shipped detector (DetectorConfig() defaults) on every
labelled picture and records, per face, whether any detection overlaps the box with IoU >= 0.5 — the
test in tests/data/test_real.py holds the file to exactly that.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

from facevlm.assets import registry
from facevlm.data.adapters import real
from facevlm.data.adapters.base import ImportSummary

MATCH_IOU = 0.5
FIELD_ORDER = (
    "source_package",
    "source_path",
    "video_frame",
    "box",
    "image_size",
    "identity",
    "expression",
    "smiling",
    "mouth_open",
    "eyeglasses",
    "facial_hair",
    "hat",
    "apparent_gender_presentation",
    "apparent_age_group",
    "head_pose",
    "notes",
    "licence",
    "file_sha256",
    "batch",
    "detector_miss",
    "detector_note",
)


def _member(obj: dict) -> registry.Member:
    for name in real.ASSETS:
        member = registry.get(name).member(obj["source_package"], obj["source_path"])
        if member is not None:
            return member
    sys.exit(
        f"{obj['source_package']} {obj['source_path']}: not in the {'/'.join(real.ASSETS)} assets of "
        f"facevlm/assets/registry.py; add it there first"
    )


def _packages(folder: Path) -> dict[tuple[str, str], str]:
    """(package spec, member path) -> sha256 from a labeller's packages.json (empty when absent)."""
    path = folder / "packages.json"
    if not path.is_file():
        return {}
    out = {}
    for pkg in json.loads(path.read_text()):
        spec = (
            f"npm:{pkg['name']}@{pkg['version']}"
            if pkg.get("registry") == "npm"
            else f"{pkg['name']}=={pkg['version']}"
        )
        for m in pkg.get("members", []):
            out[(spec, m["path"])] = m["sha256"]
    return out


def _write(lines: list[dict], path: Path) -> None:
    text = "".join(json.dumps({k: obj[k] for k in FIELD_ORDER if k in obj}, ensure_ascii=False) + "\n" for obj in lines)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    real.read_labels(tmp)  # DataError file:line before anything is replaced
    tmp.replace(path)


def merge(batch: str, folder: Path, labels: Path) -> None:
    existing = (
        [json.loads(line) for line in labels.read_text().splitlines() if line.strip()] if labels.is_file() else []
    )
    if any(obj["batch"] == batch for obj in existing):
        sys.exit(f"batch {batch} is already in {labels}")
    used = {int(m[1]) for obj in existing if (m := re.fullmatch(r"unknown_(\d+)", obj["identity"]))}
    rename: dict[str, str] = {}
    files_of: dict[str, set[str]] = {}
    for obj in existing:
        files_of.setdefault(obj["identity"], set()).add(obj["source_path"])
    pinned_by_labeller = _packages(folder)
    noted: set[str] = set()
    new = []
    for line in (folder / "labels.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        member = _member(obj)
        theirs = pinned_by_labeller.get((obj["source_package"], obj["source_path"]), member.sha256)
        for name, value in (("packages.json", theirs), ("labels.jsonl", obj.get("file_sha256", member.sha256))):
            if value != member.sha256:
                sys.exit(f"{obj['source_path']}: {name} says sha256 {value}, the registry pins {member.sha256}")
        licence = member.licence or member.source.licence
        if obj.get("licence") and obj["licence"] not in licence and obj["source_path"] not in noted:
            noted.add(obj["source_path"])
            print(f"note: {obj['source_path']}: labeller wrote licence {obj['licence']!r}, registry has {licence!r}")
        if obj["identity"].startswith("unknown_") and batch != real.FIRST_BATCH:
            if obj["identity"] in files_of and files_of[obj["identity"]] == {obj["source_path"]}:
                pass  # more frames of a video an earlier round labelled: the same person
            elif obj["identity"] not in rename:
                number = max(used | {0}) + 1
                used.add(number)
                rename[obj["identity"]] = f"unknown_{number:02d}"
            obj["identity"] = rename.get(obj["identity"], obj["identity"])
        obj.update(licence=licence, file_sha256=member.sha256, batch=batch)
        obj.setdefault("detector_miss", False)
        new.append(obj)
    _write(existing + new, labels)
    print(
        f"merged {len(new)} faces of {len({o['source_path'] for o in new})} files as batch {batch}; "
        f"renamed {len(rename)} unknown identities; run `mark` next"
    )


def mark(labels: Path) -> None:
    from facevlm.vision.detect import DetectorConfig, FaceDetector

    lines = [json.loads(line) for line in labels.read_text().splitlines() if line.strip()]
    summary = ImportSummary("real", "all", strict=True)
    records = list(real.Real(labels=labels).records("all", summary))
    if len(records) != len(lines):
        sys.exit(f"the adapter gave {len(records)} faces for {len(lines)} labels: {summary.lines()}")
    config = DetectorConfig(landmarks=False)
    ious = real.best_ious(records, FaceDetector(config))
    shipped = (
        f"shipped detector (DetectorConfig() defaults: {config.backend}, {config.input_size} px input, "
        f"confidence >= {config.min_confidence:g})"
    )
    for record, iou in zip(records, ious):
        obj = lines[record.meta["label_index"] - 1]
        obj["detector_miss"] = iou < MATCH_IOU
        obj.pop("detector_note", None)
        if obj["detector_miss"]:
            obj["detector_note"] = f"{shipped}: " + (
                f"best IoU {iou:.3f}" if iou > 0 else "no detection overlaps this box"
            )
    _write(lines, labels)
    print(f"{sum(o['detector_miss'] for o in lines)} of {len(lines)} faces missed at IoU >= {MATCH_IOU}")


def stats(labels: Path) -> None:
    rows = real.read_labels(labels)
    dev = {lb.identity for lb in rows if lb.batch == real.FIRST_BATCH}
    split = Counter(real.assign_split(lb, dev, 0.4) for lb in rows)
    ids = {s: len({lb.identity for lb in rows if real.assign_split(lb, dev, 0.4) == s}) for s in split}
    print(f"{len(rows)} faces, {len({lb.file_key for lb in rows})} files; splits {dict(split)}; identities {ids}")
    for name in (
        "expression",
        "smiling",
        "mouth_open",
        "eyeglasses",
        "facial_hair",
        "hat",
        "head_pose",
        "apparent_age_group",
        "apparent_gender_presentation",
        "licence",
        "batch",
        "detector_miss",
    ):
        print(f"  {name}: {dict(Counter(getattr(lb, name) for lb in rows).most_common())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=Path, default=real.LABELS)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("merge")
    m.add_argument("batch")
    m.add_argument("folder", type=Path)
    sub.add_parser("mark")
    sub.add_parser("stats")
    args = parser.parse_args()
    if args.command == "merge":
        merge(args.batch, args.folder, args.labels)
    elif args.command == "mark":
        mark(args.labels)
    else:
        stats(args.labels)


if __name__ == "__main__":
    main()
