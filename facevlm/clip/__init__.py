"""FaceCLIP: the face-caption contrastive model, built on open_clip.

`load(path_or_id)` returns a `FaceCLIP` (model + preprocess + tokenizer with batched, normalised
encoders and zero-shot helpers). Attributes are imported lazily so that `facevlm --help` and the CLI
tables never pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facevlm.clip.model import FaceCLIP, load

__all__ = ["FaceCLIP", "load", "create"]


def __getattr__(name: str) -> Any:
    if name in ("FaceCLIP", "load"):
        from facevlm.clip import model

        return getattr(model, name)
    if name == "create":
        from facevlm.clip.factory import create

        return create
    raise AttributeError(f"module 'facevlm.clip' has no attribute {name!r}")
