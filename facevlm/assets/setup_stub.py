"""Stand-in modules that let pip read the metadata of an sdist whose setup.py imports an uninstallable helper.

`pip download` of an sdist runs its build backend to read the name and version, even with `--no-deps`.
The bob.* sdists' setup.py import `bob.extension` (and `bob.blitz`), which needs a C++ toolchain and
libraries that no longer build, only to compute their requirements and extension list. We read data
files out of those archives and never build them, so a module that answers every such call with an
empty value is enough: `write_stubs` puts one per dotted name (parents included) into a temporary folder
that goes on PYTHONPATH for that one `pip download --no-build-isolation` (pip's isolated build
environment would override PYTHONPATH).
"""

from __future__ import annotations

from pathlib import Path

STUB_SOURCE = '''"""Stand-in for {name}, written by `facevlm assets fetch` only while pip reads an sdist's metadata."""

from setuptools import find_packages  # noqa: F401  (setup.py files import it from their build helper)
from setuptools.command.build_ext import build_ext  # noqa: F401
from setuptools.extension import Extension, Library  # noqa: F401


def _nothing(*args, **kwargs):
    return []


def __getattr__(name):  # load_requirements, egrep, find_header, pkgconfig...: nothing to report
    if name.startswith("__"):
        raise AttributeError(name)
    return _nothing
'''


def write_stubs(root: Path, modules: tuple[str, ...] | list[str]) -> list[Path]:
    """Write a stand-in package for each dotted module name and its parents under `root`; returns the
    `__init__.py` files written (a parent shared by two names is written once)."""
    written: list[Path] = []
    for module in modules:
        parts = module.split(".")
        if not all(part.isidentifier() for part in parts):
            raise ValueError(f"setup stub {module!r} is not a dotted module name")
        for depth in range(1, len(parts) + 1):
            init = root.joinpath(*parts[:depth], "__init__.py")
            if init not in written:
                init.parent.mkdir(parents=True, exist_ok=True)
                init.write_text(STUB_SOURCE.format(name=".".join(parts[:depth])))
                written.append(init)
    return written
