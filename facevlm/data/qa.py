"""Face question-answer chat samples from attribute facts, for tuning the VLM (OpenAI-style messages).

This module samples: per face it draws `per_face` question kinds by weight (yes/no, open attribute,
accessories, description, face counting, two-image comparison, gallery retrieval as a `face_search`
tool call, 2-3 turn conversations, "pos": a face of a group photo referred to by position, "noface": a
face question about an image without a face), pairs faces for comparisons (half of them the same
identity when the stream has one, so same/different is balanced), and renders turns as chat messages.
What each question asks lives in qa_templates.py (with the held-out templates); what each answer says,
and the checks that keep answers faithful to the labels, in qa_turns.py (one face) and qa_scene.py (no
face, faces by position). Samples are seeded per record id, so they do not depend on order.

Kinds that need the other faces of a record's photo ("pos", and "noface" crops of multi-face photos)
read them from `photos` (photos.photo_index / dataset_photos: image_key -> every face's box, split and
labels, for multi-face photos only, read once from the dataset's columns); without it those kinds are
drawn only where the record alone suffices (face-free crops of single-face photos, synthetic backgrounds).
"pos" fires only on photos of 2-4 faces whose records cover every face; "noface" only where a face-free
image exists (noface.py), so both are rare or absent on sets that do not have them.

Image references in content parts: "<record id>" (that face's crop), "full:<record id>" (the whole
source image of that record, for counting and positions), "bg:<record id>" (the synthetic renderer's
background of that record, no person) and "nofacecrop:<x0>,<y0>,<x1>,<y1>:<record id>" (a square of the
record's photo clear of every face box); the exporter resolves them. Retrieval by gallery face id
carries no image.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from facevlm.data.caption import record_rng
from facevlm.data.facts import DEFAULT_THRESHOLD, extract_facts
from facevlm.data.noface import noface_ref, parse_ref
from facevlm.data.photos import POSITIONS, PhotoFace, dataset_photos, positions
from facevlm.data.qa_scene import Group, by_position, no_face
from facevlm.data.qa_templates import HELDOUT, TEMPLATES
from facevlm.data.qa_turns import Face, Turn, accessories, compare, count, describe, open_question, retrieval, yes_no
from facevlm.data.search_call import SearchCall
from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord

__all__ = ["HELDOUT", "KIND_WEIGHTS", "TEMPLATES", "QAConfig", "qa_cmd", "qa_samples"]

KIND_WEIGHTS = {
    "yn": 5,
    "open": 3,
    "accessories": 1,
    "describe": 2,
    "count": 1,
    "cmp": 2,
    "ret": 2,
    "multi": 2,
    "pos": 2,
    "noface": 1,
}


@dataclass
class QAConfig:
    """`kinds` weights the sample kinds (multi = 2-3 turn conversations; pos = a face of a group photo
    by position; noface = a face question on a face-free image, small by default so the model does not
    learn to refuse); `pair_buffer` bounds the memory used to pair faces for two-image questions (pairs
    come from the last N faces streamed)."""

    per_face: int = 4
    threshold: float = DEFAULT_THRESHOLD
    sensitive: bool = False
    heldout: bool = False  # evaluation: only held-out templates
    pair_buffer: int = 256  # recent faces kept to build two-image questions
    seed: int = 0
    hedge_pseudo: bool = True  # "they seem to be smiling" for pseudo-labels
    kinds: dict[str, int] = field(default_factory=lambda: dict(KIND_WEIGHTS))

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KIND_WEIGHTS)
        if unknown or self.per_face < 1:
            raise FacevlmError(f"qa: per_face must be >= 1 and kinds among {', '.join(KIND_WEIGHTS)}")


SINGLE_GEN: dict[str, Callable[[Face, QAConfig, random.Random], Turn | None]] = {
    "yn": yes_no,
    "open": open_question,
    "accessories": accessories,
    "describe": describe,
}


def _message(turn: Turn, images: list[str]) -> list[dict[str, Any]]:
    user = {
        "role": "user",
        "content": [{"type": "image", "image": ref} for ref in images] + [{"type": "text", "text": turn.question}],
    }
    if isinstance(turn.answer, SearchCall):
        content = [{"type": "text", "text": turn.prefix}] if turn.prefix else None
        return [user, {"role": "assistant", "content": content, "tool_calls": [turn.answer.to_tool_call()]}]
    return [user, {"role": "assistant", "content": [{"type": "text", "text": turn.answer}]}]


@dataclass
class _Context:
    """What a record's photo offers beyond its face: a partner face, its group photo, a face-free image."""

    partner: Face | None = None
    group: Group | None = None
    me: int = 0
    blank: str | None = None  # noface.py image ref


def _conversation(
    face: Face, kind: str, ctx: _Context, cfg: QAConfig, rng: random.Random
) -> tuple[list[Turn], list[str], list[str]] | None:
    """(turns, image refs, record ids) of one sample of `kind`, or None when the face cannot make one."""
    rid = face.record.id
    if kind in SINGLE_GEN:
        turn = SINGLE_GEN[kind](face, cfg, rng)
        return ([turn], [rid], [rid]) if turn else None
    if kind == "count":
        turn = count(face, cfg, rng)
        return ([turn], [f"full:{rid}"], [rid]) if turn else None
    if kind == "ret":
        turn = retrieval(face, cfg, rng)
        refs = [] if turn and turn.meta.get("call") == "ret.id" else [rid]
        return ([turn], refs, [rid]) if turn else None
    if kind == "cmp":
        partner = ctx.partner
        turn = compare(face, partner, cfg, rng) if partner is not None else None
        return ([turn], [rid, partner.record.id], [rid, partner.record.id]) if turn and partner else None
    if kind == "noface":
        if ctx.blank is None:
            return None
        turn = no_face(face, cfg, rng)
        source, _, region = parse_ref(ctx.blank) or ("", "", None)
        turn.meta.update(image=source.rstrip(":"), **({"region": list(region)} if region else {}))
        return [turn], [ctx.blank], [rid]
    if kind == "pos":
        turn = by_position(ctx.group, ctx.me, cfg, rng) if ctx.group is not None else None
        if turn is None or ctx.group is None:
            return None
        others = [f.record.id for f in ctx.group.faces if f.record.id != rid]
        return [turn], [f"full:{rid}"], [rid] + (others if turn.meta["asks"] == "which" else [])
    turns: list[Turn] = []  # multi-turn: 2-3 turns of different kinds about one face; the last may be a search
    size = rng.choice([2, 3])
    last = retrieval(face, cfg, rng) if rng.random() < 0.4 else None
    last = last if last and last.meta.get("call") != "ret.id" else None
    for name in rng.sample(list(SINGLE_GEN), size - (last is not None)):
        turn = SINGLE_GEN[name](face, cfg, rng)
        concept = turn.meta.get("concept") if turn else None
        if turn and (concept is None or all(t.meta.get("concept") != concept for t in turns)):
            turns.append(turn)
    turns += [last] if last else []
    if len(turns) < 2:
        return None
    return turns, [rid], [rid]


def _group(face: Face, photo: list[PhotoFace] | None, cfg: QAConfig) -> tuple[Group, int] | None:
    """The record's group photo (2-4 faces, all known) as Faces with positions, and the record's index."""
    record = face.record
    if photo is None or len(photo) not in POSITIONS:
        return None
    ids = [p.id for p in photo]
    if record.id not in ids:
        return None
    faces = []
    for p in photo:
        if p.id == record.id:
            faces.append(face)
            continue
        other = FaceRecord(
            id=p.id,
            image=None,
            source=record.source,
            licence=record.licence,
            image_key=record.image_key,
            box=list(p.box),
            n_faces=len(photo),
            attributes=list(p.attributes),
            split=p.split,
        )
        facts, conflicted = extract_facts(other.attributes, threshold=cfg.threshold, sensitive=cfg.sensitive)
        faces.append(Face(other, facts, conflicted, cfg.hedge_pseudo))
    labelled = all(p.split == record.split for p in photo)
    return Group(faces, positions([p.box for p in photo]), labelled), ids.index(record.id)


def qa_samples(
    records: Iterable[FaceRecord],
    cfg: QAConfig,
    stats: Counter[str] | None = None,
    photos: Mapping[str, list[PhotoFace]] | None = None,
) -> Iterator[dict]:
    """`cfg.per_face` chat samples per face (fewer when a face has too few confident facts). `photos`
    (photos.photo_index of the whole dataset, all splits) gives the other faces of multi-face photos."""
    stats = stats if stats is not None else Counter()
    photos = photos if photos is not None else {}
    buffer: list[Face] = []
    by_identity: dict[str, list[Face]] = {}
    for record in records:
        facts, conflicted = extract_facts(record.attributes, threshold=cfg.threshold, sensitive=cfg.sensitive)
        face = Face(record, facts, conflicted, cfg.hedge_pseudo)
        rng = record_rng(cfg.seed, record.id, "qa")
        photo = photos.get(record.image_key or record.id)
        found = _group(face, photo, cfg) if cfg.kinds.get("pos") else None
        group, me = found if found else (None, 0)
        blank = noface_ref(record, photo) if cfg.kinds.get("noface") else None
        has = {"cmp": bool(buffer), "pos": group is not None and group.where[me] is not None, "noface": bool(blank)}
        made = 0
        for _ in range(cfg.per_face * 5):
            if made == cfg.per_face:
                break
            weights = {
                k: w
                for k, w in cfg.kinds.items()
                if w > 0 and has.get(k, True) and (k != "count" or rng.random() < 1 / max(1, record.n_faces))
            }
            if not weights:
                break
            kind = rng.choices(list(weights), list(weights.values()))[0]
            partner = _partner(face, buffer, by_identity, rng) if kind == "cmp" else None
            conv = _conversation(face, kind, _Context(partner, group, me, blank), cfg, rng)
            if conv is None:
                stats["skipped"] += 1
                continue
            turns, images, ids = conv
            messages = _message(turns[0], images)
            for t in turns[1:]:
                messages += _message(t, [])
            stats[kind] += 1
            stats.update(f"answer:{t.meta['answer']}" for t in turns if t.meta.get("kind") == "yes_no")
            yield {
                "id": f"{record.id}/qa{made}",
                "record_ids": ids,
                "split": record.split,
                "heldout": cfg.heldout,
                "tools": ["face_search"],
                "messages": messages,
                "turns": [t.meta for t in turns],
            }
            made += 1
        buffer.append(face)
        if record.identity:
            by_identity.setdefault(record.identity, []).append(face)
        if len(buffer) > cfg.pair_buffer:
            old = buffer.pop(0)
            if old.record.identity:
                by_identity[old.record.identity].remove(old)


def _partner(face: Face, buffer: list[Face], by_identity: dict[str, list[Face]], rng: random.Random) -> Face | None:
    """Half the time (when possible) a face of the same identity, so same/different is balanced."""
    same = [f for f in by_identity.get(face.record.identity or "", []) if f.record.id != face.record.id]
    if same and rng.random() < 0.5:
        return rng.choice(same)
    return rng.choice(buffer) if buffer else None


@click.command("qa")
@click.argument("in_path", metavar="IN")
@click.argument("out_path", metavar="OUT.jsonl", type=click.Path(dir_okay=False))
@click.option("--per-face", default=4, show_default=True, help="Chat samples per face.")
@click.option("--heldout", is_flag=True, help="Use only the held-out question templates (evaluation sets).")
@click.option(
    "--sensitive/--no-sensitive",
    default=False,
    show_default=True,
    help="Also ask about sensitive attributes (answers are hedged as apparent).",
)
@click.option("--threshold", default=DEFAULT_THRESHOLD, show_default=True)
@click.option("--seed", default=0, show_default=True)
def qa_cmd(
    in_path: str, out_path: str, per_face: int, heldout: bool, sensitive: bool, threshold: float, seed: int
) -> None:
    """Write face question-answer chat samples (JSONL) for the faces of dataset IN."""
    from tqdm import tqdm

    from facevlm.data.store import iter_records, load_records

    cfg = QAConfig(per_face=per_face, heldout=heldout, sensitive=sensitive, threshold=threshold, seed=seed)
    ds = load_records(in_path)
    photos = dataset_photos(ds)
    stats: Counter[str] = Counter()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("w") as fh:
        for sample in qa_samples(tqdm(iter_records(ds), total=len(ds), desc="qa"), cfg, stats, photos):
            fh.write(json.dumps(sample, ensure_ascii=False) + "\n")
            n += 1
    click.echo(f"{n} samples -> {out}")
    click.echo(", ".join(f"{k}={v}" for k, v in sorted(stats.items())))
