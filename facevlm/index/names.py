"""Gallery names: the one rule for what a gallery may be called, and where a name lives on disk.

A gallery name is a single lowercase ASCII directory name: `GALLERY_NAME_PATTERN`, 1-64 characters,
a letter or digit first, then letters, digits, '-' or '_'. Why so strict:

- a name is joined to a galleries root, so nothing in it may climb out of that root: no '.', '..',
  separators ('/', '\\'), NUL, drive letters or '~';
- ASCII only, so a look-alike ('\\uff0e\\uff0e', Cyrillic 'а') can neither slip past a check that
  normalises differently nor name a second gallery that reads like the first;
- lowercase only, so "Family" and "family" cannot be two galleries on Linux and one directory on a
  case-insensitive file system (macOS, Windows).

The gateway and the `face_search` call only ever take names (`gallery_path(root, name)`); the
`facevlm index` CLI also takes a local path for its owner (`cli_gallery_path`).
"""

from __future__ import annotations

import re
from pathlib import Path

from facevlm import paths
from facevlm.errors import FacevlmError
from facevlm.schema import GALLERY_NAME_PATTERN, GALLERY_NAME_RULE

_NAME = re.compile(GALLERY_NAME_PATTERN.removeprefix("^").removesuffix("$"), re.ASCII)  # used with fullmatch:
# Python's `$` also matches before a trailing newline, so "x\n" must not get through a `match`.


def is_gallery_name(name: object) -> bool:
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def validate_gallery_name(name: object) -> str:
    """`name` itself if it is a valid gallery name; FacevlmError (400) otherwise."""
    if not is_gallery_name(name):
        raise FacevlmError(f"gallery name {repr(name)[:80]}: use {GALLERY_NAME_RULE}", code="invalid_gallery_name")
    return name


def default_root() -> Path:
    """Where named galleries live unless a recipe says otherwise: $FACEVLM_HOME/galleries."""
    return paths.home() / "galleries"


def gallery_path(root: Path, name: str) -> Path:
    """The directory of gallery `name` under `root`; the name is validated, never interpreted as a path."""
    return Path(root) / validate_gallery_name(name)


def cli_gallery_path(arg: str | Path) -> Path:
    """A GALLERY argument of `facevlm index`: a path when it looks like one (contains a separator or starts
    with '.' or '~'), otherwise a gallery name under `default_root()`. Only the CLI takes paths: it runs
    as the user who owns them."""
    text = str(arg)
    if isinstance(arg, Path) or "/" in text or "\\" in text or text.startswith((".", "~")):
        return Path(text).expanduser()
    try:
        return gallery_path(default_root(), text)
    except FacevlmError:
        raise FacevlmError(
            f"gallery {text!r}: a gallery name is {GALLERY_NAME_RULE}; to use a folder, give a path (./{text})",
            code="invalid_gallery_name",
        ) from None
