"""Embeddings, zero-shot attribute classification and top-k search for any open_clip model.

Everything returns L2-normalised float32 CPU tensors so that a dot product is a cosine similarity
and results can go straight into FAISS (IndexFlatIP) or numpy.

Zero-shot classification follows FineCLIPER: each attribute value is described by several positive
phrasings ("a person wearing eyeglasses") and several opposite states ("a person with bare eyes"), all
from the shared table `facevlm.clip.prompts`; the score of a value is the similarity to its positive
ensemble minus `negative_weight` times the similarity to its closest opposite state. Prompt ensembles
(several templates, mean of normalised embeddings, renormalised) smooth over the wording the text
tower happens to prefer. Opposite states are compared one by one (max), not averaged: the mean of "a
straight face", "a frown" and "closed lips" is close to none of them, and with it the trained model
called half of all non-smiling faces smiling (synthetic val: accuracy 0.66, 0.92 with the max).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from facevlm.clip.backends import default_backend, image_runner, text_runner
from facevlm.clip.prompts import attribute_prompts
from facevlm.errors import FacevlmError
from facevlm.image import open_image
from facevlm.schema import VOCABULARY


def _device_of(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_images(
    model: Any, preprocess: Callable, images: Iterable[Any], batch_size: int = 32, backend: str | None = None
) -> torch.Tensor:
    """Normalised image embeddings [N, D]; `images` are PIL images, paths, or already-preprocessed
    [3, H, W] tensors. Preprocessing of a batch is done just before its forward, so memory stays flat.
    `backend` (facevlm.clip.backends; default `default_backend()`, so the eval harness, which calls this
    directly, runs the same fast path as FaceCLIP) picks how the forward runs; every backend but `bf16`
    returns open_clip's eager embeddings within float rounding."""
    device = _device_of(model)
    dtype = next(model.parameters()).dtype
    forward = image_runner(model, backend or default_backend())
    out: list[torch.Tensor] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        pixels = torch.stack(batch).to(device=device, dtype=dtype)
        out.append(F.normalize(forward(pixels), dim=-1).cpu())
        batch.clear()

    _eval_mode(model)
    for item in images:
        batch.append(item if isinstance(item, torch.Tensor) else preprocess(open_image(item)))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not out:
        return torch.empty(0, _embed_dim(model))
    return torch.cat(out)


PADDING_SLACK = 0.1  # length_batches: the share of a text batch's tokens that may be padding


def pad_id(tokenizer: Any) -> int | None:
    """The pad token of an HF text tower's tokenizer; None for open_clip's own (fixed-context) tokenizer."""
    return getattr(getattr(tokenizer, "tokenizer", None), "pad_token_id", None)


def trim_padding(tokens: torch.Tensor, tokenizer: Any) -> torch.Tensor:
    """For HF text towers, drop the trailing columns that are padding in every row.

    open_clip pads to the full context length; an HF tower (attention mask from the pad id, mean
    pooling) gives the same features without those columns, and short captions then cost 2-3x less.
    open_clip's own text transformer adds its full positional table, so its tokens are left alone.
    """
    pad = pad_id(tokenizer)
    if pad is None:
        return tokens
    used = (tokens != pad).any(0).nonzero()
    return tokens[:, : int(used.max()) + 1] if len(used) else tokens[:, :1]


def length_batches(lengths: Sequence[int], batch_size: int, slack: float = PADDING_SLACK) -> list[list[int]]:
    """Row indices grouped into batches of similar token length, each padded to its own longest row.

    One batch pads every text to the longest; the padding is real work for the text tower (it attends
    over it, then the pooler drops it). Walking the texts shortest first, a batch is closed when it is
    full or when padding it to the next text would waste more than `slack` of its tokens: the expression
    head's 64 prompts (11-17 tokens) then cost 907 instead of 1,088 token forwards, in 3 calls instead of 1.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    batch: list[int] = []
    used = 0
    for i in order:
        n = lengths[i]
        if batch and (len(batch) == batch_size or (len(batch) + 1) * n > (1 + slack) * (used + n)):
            batches.append(batch)
            batch, used = [], 0
        batch.append(i)
        used += n
    return [*batches, batch] if batch else batches


@torch.no_grad()
def encode_texts(
    model: Any, tokenizer: Callable, texts: Sequence[str], batch_size: int = 64, backend: str | None = None
) -> torch.Tensor:
    """Normalised text embeddings [N, D] in the order of `texts`, the forward through `backend` as in
    `encode_images`, in batches of similar length (`length_batches`) for an HF tower."""
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        return torch.empty(0, _embed_dim(model))
    device = _device_of(model)
    forward = text_runner(model, backend or default_backend())
    _eval_mode(model)
    tokens = tokenizer(list(texts))
    pad = pad_id(tokenizer)
    if pad is None:  # open_clip's own tower: fixed context, nothing to bucket
        groups = [list(range(i, min(i + batch_size, len(texts)))) for i in range(0, len(texts), batch_size)]
    else:
        groups = length_batches((tokens != pad).sum(1).tolist(), batch_size)
    out = torch.empty(len(texts), _embed_dim(model))
    for rows in groups:
        out[rows] = F.normalize(forward(trim_padding(tokens[rows], tokenizer).to(device)).float(), dim=-1).cpu()
    return out


def _eval_mode(model: Any) -> None:
    """`model.eval()` only when needed: it walks every submodule (~3 ms for MiniLM + MobileNetV2), which
    was a third of a one-query text encode."""
    if model.training:
        model.eval()


def _embed_dim(model: Any) -> int:
    proj = getattr(model, "text_projection", None)
    if proj is not None:
        return proj.shape[-1]
    return getattr(model.text, "output_dim", 0)


def ensemble(model: Any, tokenizer: Callable, prompts: Sequence[str]) -> torch.Tensor:
    """One normalised embedding for a prompt ensemble (mean of normalised prompt embeddings)."""
    return F.normalize(encode_texts(model, tokenizer, prompts).mean(0), dim=-1)


@dataclass
class ZeroShotHead:
    """Class embeddings of one attribute: a positive ensemble per value [V, D] and, per value, one
    row per opposite state [K_v, D]. A binary head keeps only the "true" side ([1, D] and one state
    set): its "false" column is the negation of "true", so a "false" side would never be read."""

    attribute: str
    values: list[str]
    positive: torch.Tensor
    negatives: list[torch.Tensor]
    negative_weight: float = 0.5
    binary: bool = False
    calibration: Any = None  # facevlm.clip.calibration.AttributeCalibration fitted on real labelled faces

    def scores(self, image_embeddings: torch.Tensor) -> torch.Tensor:
        """[N, V] scores (higher = more likely); differences of cosines, not probabilities.

        A value scores sim(positive) - w * sim(closest opposite state). A binary attribute's "true"
        column is sim(positive) - sim(closest opposite state) and "false" its negation, so the
        decision is "the positive ensemble beats every opposite state", whatever w."""
        img = image_embeddings.float()
        if self.binary:
            s = img @ self.positive[0] - (img @ self.negatives[0].T).amax(-1)
            return torch.stack([s, -s], -1)
        cols = []
        for value, states in enumerate(self.negatives):
            s = img @ self.positive[value]
            if self.negative_weight and len(states):
                s = s - self.negative_weight * (img @ states.T).amax(-1)
            cols.append(s)
        return torch.stack(cols, -1)

    def predict(self, image_embeddings: torch.Tensor, temperature: float = 100.0) -> tuple[list[str], torch.Tensor]:
        """Predicted value per image and the probabilities over values: with a `calibration`, its fitted
        threshold and probabilities, and "uncertain" for every image when the attribute is unreliable
        (its decisions did not beat the majority guess on held-out real faces); without one, the argmax
        and the softmax at CLIP's usual logit scale."""
        if self.calibration is not None:
            labels, probs = self.calibration.decide(self.scores(image_embeddings).numpy())
            return labels, torch.from_numpy(probs).float()
        probs = (temperature * self.scores(image_embeddings)).softmax(-1)
        return [self.values[i] for i in probs.argmax(-1).tolist()], probs


def build_head(
    attribute: str, embed: Callable[[list[str]], torch.Tensor], negative_weight: float = 0.5
) -> ZeroShotHead:
    """The zero-shot head of `attribute` from the shared prompt table, `embed` turning a prompt list
    into one normalised ensemble embedding [D]. FaceCLIP's own head and the benchmark's zeroshot task
    (which embeds through its cache) both build heads here, so they cannot drift apart."""
    prompts = attribute_prompts(attribute)
    values = list(prompts)
    binary = VOCABULARY[attribute].kind == "binary"
    sides = values[:1] if binary else values
    positive = torch.stack([embed(prompts[v][0]) for v in sides])
    negatives = [torch.stack([embed(state) for state in prompts[v][1]]) for v in sides]
    return ZeroShotHead(attribute, values, positive, negatives, negative_weight, binary=binary)


def zero_shot_head(
    model: Any,
    tokenizer: Callable,
    attribute: str,
    *,
    negative_weight: float = 0.5,
    allow_sensitive: bool = False,
    embed: Callable[[list[str]], torch.Tensor] | None = None,
) -> ZeroShotHead:
    """Build the prompt-ensemble classifier of one schema attribute (`embed`: prompts -> one ensemble
    embedding; default `ensemble` on the model, FaceCLIP passes its cached one).

    Sensitive attributes (apparent age, gender presentation, skin tone, race) need `allow_sensitive`,
    the same switch the rest of facevlm uses, so they are never predicted by accident.
    """
    spec = VOCABULARY.get(attribute)
    if spec is not None and spec.sensitive and not allow_sensitive:
        raise FacevlmError(f"attribute {attribute!r} is sensitive; pass allow_sensitive=True to classify it")
    embed = embed or (lambda prompts: ensemble(model, tokenizer, prompts))
    return build_head(attribute, embed, negative_weight)


def topk(queries: torch.Tensor, gallery: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, indices), each [Q, min(k, N)], of the most similar gallery rows per query (cosine
    similarity for normalised inputs)."""
    if queries.ndim == 1:
        queries = queries[None]
    if queries.shape[-1] != gallery.shape[-1]:
        raise FacevlmError(f"query dim {queries.shape[-1]} != gallery dim {gallery.shape[-1]}")
    sims = queries.float() @ gallery.float().T
    return sims.topk(min(k, gallery.shape[0]), dim=-1)


def recall_at_k(
    queries: torch.Tensor, gallery: torch.Tensor, targets: Sequence[Sequence[int]] | torch.Tensor, k: int = 1
) -> float:
    """Fraction of queries with a correct gallery item among their top k; `targets[i]` lists the
    indices that count as correct for query i (several captions or images can match)."""
    _, idx = topk(queries, gallery, k)
    hits = [bool(set(row) & set(map(int, t))) for row, t in zip(idx.tolist(), targets)]
    return sum(hits) / max(len(hits), 1)
