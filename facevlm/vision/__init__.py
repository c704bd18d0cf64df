"""Face experts: detector + 5-point landmarks (`detect`), alignment (`align`), expression (`expression`,
on the torch port of fer's mini-Xception in `fer`). Import the submodules directly; this package imports
nothing heavy so that `facevlm --help` stays fast."""

from __future__ import annotations

from pathlib import Path


def asset_dir(name_or_path: str | Path) -> Path:
    """A local directory for an asset name or path: existing paths pass through, names go through
    `facevlm.assets.resolve` (which raises AssetError naming `facevlm assets fetch` when missing)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    from facevlm.assets import resolve

    return Path(resolve(str(name_or_path)))
