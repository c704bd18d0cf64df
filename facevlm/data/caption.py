"""Grammar-template captions from confident attribute facts (FaceCaption-15M style, + optional LLM rewrite).

Why templates first: a caption built from labels is exactly as true as the labels, which is what a
contrastive face model needs; an LLM rewrite (rewrite.py) only adds fluency and is accepted only when
`facts.check` finds every fact kept and none contradicted. Wording varies along four axes so a text
tower cannot key on one sentence shape: template (clause structure), subject noun, synonym per fact,
and fact order/subset. Ground truth is stated plainly; pseudo-labels go into a hedged sentence ("They
seem to be smiling"); sensitive attributes appear only when enabled and always as *apparent*. Every
caption is checked with `facts.check` before it is kept, and everything is seeded per record id, so a
dataset captions identically in any order or process.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import click

from facevlm.data.facts import DEFAULT_THRESHOLD, Fact, check, extract_facts, phrases
from facevlm.data.rewrite import RewriteConfig
from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord

WEAR = frozenset(
    {"eyeglasses", "sunglasses", "face_mask", "hat", "earrings", "necklace", "necktie", "lipstick", "heavy_makeup"}
)
PRED = frozenset({"smiling", "head_turn", "head_pitch", "head_roll", "age_group", "young"})
NOTE = frozenset({"race", "skin_tone"})  # said in a separate "Apparent ...: ..." sentence
SUBJECTS = ("A person", "Someone", "A portrait of a person", "A close-up photo of someone", "A photo of a person")
LIST_HEADS = ("Close-up of a face", "Face photo", "A face", "Portrait")


@dataclass
class CaptionConfig:
    """How captions are built. `negatives` is the chance that a caption also states a true absence
    ("no glasses"); absences are plentiful and informative for contrastive training but should not
    crowd out what is present, hence `max_facts` bounds the positives per caption."""

    n: int = 3
    threshold: float = DEFAULT_THRESHOLD
    sensitive: bool = False
    hedge_pseudo: bool = True
    negatives: float = 0.5
    max_negatives: int = 2
    max_facts: int = 6
    seed: int = 0
    rewrite: RewriteConfig | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise FacevlmError(f"caption: n must be >= 1, not {self.n}")
        if not 0.0 <= self.threshold <= 1.0 or not 0.0 <= self.negatives <= 1.0:
            raise FacevlmError("caption: threshold and negatives must lie in [0, 1]")
        if self.max_facts < 1:
            raise FacevlmError(f"caption: max_facts must be >= 1, not {self.max_facts}")


@dataclass
class Piece:
    """One fact rendered for every slot the templates need: `np` after "with" or in a list, and
    `verb` + `comp` for clauses ("is wearing" + "glasses"); pieces sharing a verb are merged."""

    fact: Fact
    slot: str  # has | wear | pred | note | scene
    np: str
    verb: str = ""
    comp: str = ""


_INFINITIVE = {"is": "be", "is wearing": "be wearing", "has": "have"}
# (plural verb, negated, hedged, hedged negated) per singular verb of caption.Piece
VERBS = {
    "is": ("are", "are not", "seem to be", "do not seem to be"),
    "is wearing": ("are wearing", "are not wearing", "seem to be wearing", "do not seem to be wearing"),
    "has": ("have", "do not have", "seem to have", "do not seem to have"),
    "appears to be": ("appear to be", "do not appear to be", "appear to be", "do not appear to be"),
}


@dataclass
class CaptionStats:
    records: int = 0
    captions: int = 0
    template_failures: int = 0  # generated captions that failed the fact check (should stay 0)
    rewrite: dict[str, int] = field(default_factory=dict)


def join_phrases(items: list[str], rng: random.Random) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + (", and " if len(items) > 2 and rng.random() < 0.3 else " and ") + items[-1]


def plural_vp(vp: str) -> str:
    """Singular verb phrase -> plural, for "They ..." sentences."""
    head, _, rest = vp.partition(" ")
    head = {"is": "are", "has": "have", "appears": "appear"}.get(head, head)
    return f"{head} {rest}".strip()


def merge_clauses(pieces: list[Piece], rng: random.Random, verb_map: dict[str, str] | None = None) -> list[str]:
    """Verb phrases with pieces of the same verb merged: "is wearing glasses and a hat"."""
    groups: dict[str, list[str]] = {}
    for p in pieces:
        verb = verb_map.get(p.verb, p.verb) if verb_map else p.verb
        groups.setdefault(verb, []).append(p.comp)
    return [f"{verb} {join_phrases(comps, rng)}" for verb, comps in groups.items()]


def piece_for(fact: Fact, rng: random.Random) -> Piece:
    """A fact in its grammatical slot with a random synonym; sensitive facts come out as apparent."""
    text = rng.choice(phrases(fact))
    c = fact.concept
    if c in NOTE:
        return Piece(fact, "note", f"Apparent {text}.")
    if c == "blurry":
        return Piece(fact, "scene", text)
    if fact.sensitive:  # apparent, never asserted
        if c in PRED:
            return Piece(fact, "pred", f"apparently {text}", "appears to be", text)
        if text.startswith(("a ", "an ")) or c == "gender":
            np = "an apparent " + (text.split(" ", 1)[1] if text.startswith(("a ", "an ")) else text)
        else:
            np = f"apparently {text}"
        return Piece(fact, "has", np, "has", np)
    if c in WEAR:
        return Piece(fact, "wear", text, "is wearing", text)
    return Piece(fact, "pred", text, "is", text) if c in PRED else Piece(fact, "has", text, "has", text)


def clause(fact: Fact, rng: random.Random, negate: bool = False, hedge: bool = False) -> str:
    """ "they are wearing glasses" / "they do not seem to have a beard": answers and comparisons (qa.py)."""
    p = piece_for(fact, rng)
    plural, neg, hplural, hneg = VERBS[p.verb]
    if hedge and fact.origin == "pseudo" and not fact.sensitive:
        return f"they {hneg if negate else hplural} {p.comp}"
    return f"they {neg if negate else plural} {p.comp}"


def _choose(facts: list[Fact], cfg: CaptionConfig, rng: random.Random) -> list[Fact]:
    """A random subset: up to max_facts stated positives, plus a few true absences."""
    pos = [f for f in facts if f.stated and not (f.value == "false")]
    neg = [f for f in facts if f.stated and f.value == "false"]
    chosen = rng.sample(pos, min(len(pos), cfg.max_facts))
    if neg and rng.random() < cfg.negatives:
        chosen += rng.sample(neg, min(len(neg), rng.randint(1, cfg.max_negatives)))
    rng.shuffle(chosen)
    return chosen


def _main_sentence(subject: str, has: list[Piece], preds: list[Piece], rng: random.Random) -> str:
    """One clause structure out of five, picked among those the pieces can fill."""
    nps = [p.np for p in has]
    options = ["with", "who", "this", "list"] + (["front"] if preds and nps else [])
    form = rng.choice(options) if (nps or preds) else "bare"
    if form == "with":
        tail = f" with {join_phrases(nps, rng)}" if nps else ""
        return f"{subject}{tail}{', ' if preds else ''}{join_phrases([p.np for p in preds], rng)}."
    if form == "who":
        return f"{subject} who {join_phrases(merge_clauses(preds + has, rng), rng)}."
    if form == "this":
        who = rng.choice(["This person", "They"])
        vps = merge_clauses(has + preds, rng)
        return f"{who} {join_phrases(vps if who == 'This person' else [plural_vp(v) for v in vps], rng)}."
    if form == "list":
        return f"{rng.choice(LIST_HEADS)}: {', '.join(p.np for p in has + preds)}."
    if form == "front":
        lead = join_phrases([p.np for p in preds], rng)
        return f"{lead[0].upper()}{lead[1:]}, {subject[0].lower()}{subject[1:]} with {join_phrases(nps, rng)}."
    return f"{subject}."


def build_caption(facts: list[Fact], cfg: CaptionConfig, rng: random.Random) -> tuple[str, list[Fact]]:
    """One caption and the facts it states."""
    chosen = _choose(facts, cfg, rng)
    # absences last, so "wearing lipstick and no glasses" never reads as "no (glasses, lipstick)"
    pieces = sorted((piece_for(f, rng) for f in chosen), key=lambda p: p.fact.value == "false")
    hedge = cfg.hedge_pseudo
    hedged = [
        p for p in pieces if hedge and p.fact.origin == "pseudo" and not p.fact.sensitive and p.verb in _INFINITIVE
    ]
    plain = [p for p in pieces if p not in hedged]
    has = [p for p in plain if p.slot in ("has", "wear")]
    preds = [p for p in plain if p.slot == "pred"]
    parts = [_main_sentence(rng.choice(SUBJECTS), has, preds, rng)]
    if hedged:
        verb = rng.choice(["seem to", "appear to", "are likely to"])
        parts.append(f"They {verb} {join_phrases(merge_clauses(hedged, rng, _INFINITIVE), rng)}.")
    for p in pieces:
        if p.slot == "scene":
            looks = "looks" if hedge and p.fact.origin == "pseudo" else "is"
            parts.append(f"The {rng.choice(['photo', 'image'])} {looks} {p.np}.")
    parts += [p.np for p in plain if p.slot == "note"]
    return " ".join(parts), chosen


def record_rng(seed: int, record_id: str, salt: str = "caption") -> random.Random:
    """Seeded per record, so output does not depend on order, batching or workers."""
    return random.Random(f"{salt}:{seed}:{record_id}")


def grammar_captions(
    record: FaceRecord, cfg: CaptionConfig, stats: CaptionStats | None = None
) -> list[tuple[str, list[Fact]]]:
    """Up to cfg.n distinct captions for one record, each verified by the fact checker."""
    facts, conflicted = extract_facts(record.attributes, threshold=cfg.threshold, sensitive=cfg.sensitive)
    rng = record_rng(cfg.seed, record.id)
    out: list[tuple[str, list[Fact]]] = []
    seen: set[str] = set()
    for _ in range(cfg.n * 6):
        if len(out) == cfg.n:
            break
        text, used = build_caption(facts, cfg, rng)
        if text in seen:
            continue
        seen.add(text)
        if not check(text, used, facts, conflicted=conflicted).ok:
            if stats is not None:
                stats.template_failures += 1
            continue
        out.append((text, used))
    return out


def caption_records(
    records: Iterable[FaceRecord], cfg: CaptionConfig, stats: CaptionStats | None = None
) -> Iterator[FaceRecord]:
    """Set `record.captions` (grammar, or LLM-rewritten where the rewrite passed the check).
    `meta["caption_origin"]` says, per caption, "template" or "rewrite:<model>"."""
    stats = stats if stats is not None else CaptionStats()
    rewriter = None
    if cfg.rewrite is not None:
        from facevlm.data.rewrite import Rewriter

        rewriter = Rewriter(cfg.rewrite)
    batch: list[tuple[FaceRecord, list[tuple[str, list[Fact]]]]] = []
    for record in records:
        caps = grammar_captions(record, cfg, stats)
        stats.records += 1
        stats.captions += len(caps)
        if rewriter is None:
            record.captions = [c for c, _ in caps]
            record.meta = {**record.meta, "caption_origin": ["template"] * len(caps)}
            yield record
            continue
        batch.append((record, caps))
        if sum(len(c) for _, c in batch) >= rewriter.cfg.batch_size * 4:
            yield from _rewrite_batch(rewriter, batch, cfg, stats)
            batch = []
    if batch and rewriter is not None:
        yield from _rewrite_batch(rewriter, batch, cfg, stats)


def _rewrite_batch(rewriter, batch, cfg: CaptionConfig, stats: CaptionStats) -> Iterator[FaceRecord]:
    items = []
    for record, caps in batch:
        facts, conflicted = extract_facts(record.attributes, threshold=cfg.threshold, sensitive=cfg.sensitive)
        items += [(text, used, facts, conflicted) for text, used in caps]
    results = iter(rewriter.rewrite(items))
    for record, caps in batch:
        mine = [next(results) for _ in caps]
        record.captions = [r.text for r in mine]
        record.meta = {
            **record.meta,
            "caption_origin": [f"rewrite:{rewriter.name}" if r.accepted else "template" for r in mine],
        }
        yield record
    stats.rewrite = {**rewriter.counts, **({"retried_ok": rewriter.retried_ok} if rewriter.cfg.retries else {})}


@click.command("caption")
@click.argument("in_path", metavar="IN")
@click.argument("out_path", metavar="OUT")
@click.option("--n", "n", default=3, show_default=True, help="Captions per face.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--threshold",
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Minimum probability for a pseudo-label to be stated.",
)
@click.option(
    "--sensitive/--no-sensitive",
    default=False,
    show_default=True,
    help="Include sensitive attributes (apparent age, gender presentation, skin tone, race), phrased as apparent.",
)
@click.option("--negatives", default=0.5, show_default=True, help="Chance a caption also states true absences.")
@click.option("--rewrite", is_flag=True, help="Rewrite captions with a local LLM; unfaithful rewrites are rejected.")
@click.option(
    "--model",
    default="smollm2-135m-instruct",
    show_default=True,
    help="Rewrite model: asset name, local path or hub id.",
)
@click.option("--base-url", default=None, help="Use an OpenAI-compatible server (e.g. `facevlm engine`) instead.")
@click.option("--batch-size", default=8, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads for the local rewrite model.")
@click.option("--retries", default=0, show_default=True, help="Re-sample rejected rewrites this many times.")
def caption_cmd(
    in_path: str,
    out_path: str,
    n: int,
    seed: int,
    threshold: float,
    sensitive: bool,
    negatives: float,
    rewrite: bool,
    model: str,
    base_url: str | None,
    batch_size: int,
    threads: int | None,
    retries: int,
) -> None:
    """Caption every face of dataset IN (path or name) and save the result as dataset OUT."""
    from tqdm import tqdm

    from facevlm.data.store import iter_records, load_records, save_records

    rw = (
        RewriteConfig(
            model=model,
            base_url=base_url,
            batch_size=batch_size,
            threads=threads,
            retries=retries,
            backend="openai" if base_url else "transformers",
        )
        if rewrite
        else None
    )
    cfg = CaptionConfig(n=n, seed=seed, threshold=threshold, sensitive=sensitive, negatives=negatives, rewrite=rw)
    ds = load_records(in_path)
    stats = CaptionStats()
    records = caption_records(tqdm(iter_records(ds), total=len(ds), desc="caption"), cfg, stats)
    out = save_records(records, out_path)
    click.echo(f"{stats.records} faces, {stats.captions} captions -> {out}")
    if stats.rewrite:
        click.echo("rewrite: " + ", ".join(f"{k}={v}" for k, v in sorted(stats.rewrite.items())))
    if stats.template_failures:
        click.echo(
            f"warning: {stats.template_failures} template captions failed the fact check and were dropped", err=True
        )
