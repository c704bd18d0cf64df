"""`batched`: the one batch-and-flush loop, for streams that must be processed a batch at a time.

The data stages, the gallery ingest and the FaceCLIP encoders all read a stream lazily (a 200k-image
import never sits in memory) yet run their models on whole batches. Written out by hand, that loop needs
a "flush the remainder" branch after it, which is the part that gets forgotten; here it is written once.
Lives in the lowest layer: it knows nothing about faces or models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from facevlm.errors import FacevlmError

T = TypeVar("T")


def batched(items: Iterable[T], n: int, weight: Callable[[T], int] | None = None) -> Iterator[list[T]]:
    """Consecutive lists of `items`, in order, each closed once it holds `n` items (or, with `weight`,
    once the weights of its items add up to `n`: e.g. images weighed by their faces when the model runs
    on faces); the last list holds the remainder and no list is ever empty. Lazy: an item is read only
    when its batch is being filled, so a batch is processed before the next one is read."""
    if n < 1:
        raise FacevlmError(f"batch size must be at least 1, got {n}")
    batch: list[T] = []
    filled = 0
    for item in items:
        batch.append(item)
        filled += 1 if weight is None else weight(item)
        if filled >= n:
            yield batch
            batch, filled = [], 0
    if batch:
        yield batch
