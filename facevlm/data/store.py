"""Storage of face records: Hugging Face `datasets` on disk, with `schema.hf_features()`.

Records are written through an `ArrowWriter` as they stream in (a 200k-image import never sits in RAM),
then saved with `save_to_disk`, so any `datasets` user can `load_from_disk` the result. Images are stored
as their original encoded bytes inside the Arrow files, so a stored dataset is self-contained and can be
moved or shared without the source folders.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from facevlm import paths
from facevlm.errors import FacevlmError
from facevlm.image import TRUSTED, decode_image, open_image
from facevlm.schema import FaceRecord, from_row, hf_features, to_row
from facevlm.vision.crop import TRAINING_MARGIN
from facevlm.vision.crop import face_crop as crop_rule

WRITER_BATCH = 256  # rows per Arrow record batch: bounds memory when rows carry full-size images


def dataset_path(name_or_path: str | Path) -> Path:
    """A bare name means `$FACEVLM_HOME/datasets/<name>`; anything path-like is used as given."""
    text = str(name_or_path)
    if Path(text).is_absolute() or text.startswith((".", "~")) or "/" in text or "\\" in text:
        return Path(text).expanduser()
    return paths.datasets_dir() / text


def save_records(records: Iterable[FaceRecord], out_dir: str | Path) -> Path:
    """Write `records` as a `datasets` dataset at `out_dir` (replaced if it exists); returns the path.

    The new dataset is built next to the target and swapped in at the end, so a failed run never leaves
    a half-written dataset and the input may be the dataset being replaced.
    """
    from datasets import Dataset
    from datasets.arrow_writer import ArrowWriter

    out = Path(out_dir).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        features = hf_features()
        arrow = work / "records.arrow"
        with ArrowWriter(features=features, path=str(arrow), writer_batch_size=WRITER_BATCH) as writer:
            for record in records:
                row = to_row(record)
                row["image"] = _original_bytes(record.image) or _png(record.image) or row["image"]
                writer.write(features.encode_example(row))
            writer.finalize()
        staged = work / "dataset"
        ds = Dataset.from_file(str(arrow))
        # an empty dataset still gets one (empty) shard: zero shards cannot be loaded back
        ds.save_to_disk(str(staged), num_shards=None if len(ds) else 1)
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


PNG_LEVEL = 1  # zlib level of the PNGs written here: half the time of PIL's default 6 for ~13% more bytes


def encode_png(image: Any) -> bytes:
    """`image` (PIL, or an RGB uint8 array) as a lossless PNG at `PNG_LEVEL`. Why not `datasets`' own encoding:
    it saves at PIL's default level 6, ~10 ms for a 160 px rendered face on this CPU against ~5 ms at level
    1 (same pixels, 49 vs 44 KB), and a 12k-face build spent ~2 minutes of CPU there."""
    import io

    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=PNG_LEVEL)
    return out.getvalue()


def _png(image: Any) -> dict[str, Any] | None:
    """The stored value of an in-memory image with no format of its own (a render, an edit of a PNG);
    None for anything else (bytes, a path, an edited JPEG: re-encoded in its own format by `datasets`)."""
    from PIL import Image

    if isinstance(image, Image.Image) and image.format in (None, "PNG") and image.mode in ("RGB", "RGBA", "L", "LA"):
        return {"bytes": encode_png(image), "path": None}
    return None


def load_records(path_or_name: str | Path, split: str | None = None):
    """The stored dataset (a `datasets.Dataset`); `split` keeps only rows whose `split` column matches."""
    from datasets import Dataset, load_from_disk

    path = dataset_path(path_or_name)
    if not (path / "dataset_info.json").is_file():
        raise FacevlmError(f"{path}: no stored face dataset here (make one with `facevlm data build` or `import`)")
    ds = load_from_disk(str(path))
    if not isinstance(ds, Dataset) or "attributes" not in ds.column_names:
        raise FacevlmError(f"{path}: not a facevlm face dataset (expected one Dataset with schema.hf_features())")
    if split is not None:
        keep = [i for i, s in enumerate(ds["split"]) if s == split]
        ds = ds.select(keep, keep_in_memory=True)
    return ds


SOURCE_KEY = "facevlm_source"  # PIL info key: (pixel digest, original encoded bytes)


def _digest(img: Any) -> tuple[int, str, tuple[int, int]]:
    """Pixel checksum: detects an edited image (not an adversary), so a fast CRC is enough."""
    return zlib.crc32(img.tobytes()), img.mode, img.size


def iter_records(ds: Any, decode: bool = True) -> Iterator[FaceRecord]:
    """FaceRecords from a stored dataset, images opened by `facevlm.image.open_image`: upright RGB, the
    pixels every stage (detector, crops, FaceCLIP) sees, so a box found on them is the box cut later.
    `decode=False` leaves each image as its stored value ({bytes, path}), for a pass that only rewrites the
    other columns (the split): `save_records` stores those bytes unchanged.

    Each image remembers its original encoded bytes and a digest of its pixels, so `save_records` can
    store the same bytes again when the pixels are unchanged: re-saving after detect/label/split never
    re-encodes a JPEG (no generation loss, no PNG blow-up) nor bakes in an EXIF rotation.
    """
    from datasets import Image as ImageFeature

    if "image" in getattr(ds, "column_names", []):
        ds = ds.cast_column("image", ImageFeature(decode=False))
    for row in ds:
        raw = row["image"]
        if isinstance(raw, dict) and decode:
            data = raw["bytes"] if raw.get("bytes") is not None else Path(raw["path"]).read_bytes()
            decoded = decode_image(data, TRUSTED, where=f"record {row.get('id')}")
            img = decoded.image
            img.format = decoded.format  # an edited image is re-encoded in its own format, not as PNG
            img.info[SOURCE_KEY] = (_digest(img), data)
            row = {**row, "image": img}
        yield from_row(row)


def _original_bytes(image: Any) -> dict[str, Any] | None:
    """The stored bytes of an image read by `iter_records`, if its pixels are still exactly those."""
    info = getattr(image, "info", None)
    source = info.get(SOURCE_KEY) if isinstance(info, dict) else None
    if source is not None and source[0] == _digest(image):
        return {"bytes": source[1], "path": None}
    return None


def face_crop(record: FaceRecord, size: int | None = None, margin: float = TRAINING_MARGIN):
    """The record's face by the one crop rule (`facevlm.vision.crop.face_crop`: box + `margin`, padded
    black at the photo border), or the whole image for a record without a box; `size` squares and
    resizes it. FaceCLIP trains on these crops and the gallery embeds the same ones."""
    return crop_rule(open_image(record.image), record.box, margin, size)


def summarize(ds: Any) -> dict[str, Any]:
    """Counts per source, split, licence and attribute value (gt vs pseudo), without decoding images."""
    cols = ds.select_columns(["source", "split", "identity", "box", "attributes", "captions"])
    out: dict[str, Any] = {
        "records": len(ds),
        "sources": Counter(),
        "splits": Counter(),
        "identities": set(),
        "with_box": 0,
        "captions": 0,
        "attributes": {},
    }
    for batch in cols.iter(batch_size=1024):
        out["sources"].update(batch["source"])
        out["splits"].update(s or "(none)" for s in batch["split"])
        out["identities"].update(i for i in batch["identity"] if i)
        out["with_box"] += sum(1 for b in batch["box"] if b)
        out["captions"] += sum(len(c) for c in batch["captions"])
        for attrs in batch["attributes"]:
            for a in attrs:
                out["attributes"].setdefault(a["name"], Counter())[f"{a['value']} ({a['origin']})"] += 1
    out["identities"] = len(out["identities"])
    return out


@click.command("info", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info_cmd(dataset: str, as_json: bool) -> None:
    """Summarise a stored DATASET (name or path): records, sources, splits, attribute counts."""
    summary = summarize(load_records(dataset))
    provenance = dataset_path(dataset) / "recipe.json"  # a recipe-built dataset: what its stages reported
    summary["stages"] = json.loads(provenance.read_text()).get("stages", {}) if provenance.is_file() else {}
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    click.echo(
        f"{dataset_path(dataset)}: {summary['records']} faces, {summary['identities']} identities, "
        f"{summary['with_box']} with a box, {summary['captions']} captions"
    )
    click.echo("sources: " + ", ".join(f"{k} {v}" for k, v in summary["sources"].most_common()))
    click.echo("splits:  " + ", ".join(f"{k} {v}" for k, v in summary["splits"].most_common()))
    for name, counts in sorted(summary["attributes"].items()):
        click.echo(f"  {name:<22} " + ", ".join(f"{k} {v}" for k, v in counts.most_common(8)))
    for stage, report in summary["stages"].items():
        for line in report.get("lines", []):
            click.echo(f"{stage}: {line}")
