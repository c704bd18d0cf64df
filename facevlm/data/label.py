"""`facevlm data label`: pseudo-label attributes with pretrained experts.

Every label is written with `origin="pseudo"`, the expert's probability and its name, through
`FaceRecord.set`, which never overwrites ground truth. Where ground truth exists the expert still runs,
and the agreement is reported: the one honest estimate of how good the pseudo-labels are on this data.
The full class distribution goes to `meta["pseudo_probs"][attribute]` for soft-label training.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import click

from facevlm.batching import batched
from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord
from facevlm.vision.expression import EXPRESSION_MARGIN, MODEL_NAME

EXPERTS = ("expression",)


@dataclass
class LabelConfig:
    experts: list[str] = field(default_factory=lambda: ["expression"])
    expression_model: str = MODEL_NAME
    min_prob: float = 0.0  # below this top-class probability no label is written (counted as "uncertain")
    crop_margin: float = EXPRESSION_MARGIN  # the expert's own square crop, see vision.expression.expression_crop
    batch_size: int = 128
    device: str = "cpu"

    def __post_init__(self) -> None:
        unknown = [e for e in self.experts if e not in EXPERTS]
        if unknown:
            raise FacevlmError(f"experts: {', '.join(unknown)} unknown; available: {', '.join(EXPERTS)}")
        if self.min_prob < 0 or self.batch_size < 1:
            raise FacevlmError(f"label min_prob ({self.min_prob}) must be >= 0 and batch_size ({self.batch_size}) >= 1")


@dataclass
class LabelSummary:
    records: int = 0
    labelled: Counter = field(default_factory=Counter)  # attribute -> pseudo-labels written
    values: dict[str, Counter] = field(default_factory=dict)  # attribute -> value -> count
    uncertain: Counter = field(default_factory=Counter)  # attribute -> below min_prob
    gt_kept: Counter = field(default_factory=Counter)  # attribute -> records whose ground truth was kept
    gt_agree: Counter = field(default_factory=Counter)  # attribute -> expert agrees with ground truth
    gt_pairs: dict[str, Counter] = field(default_factory=dict)  # attribute -> "truth->expert" -> count

    def agreement(self) -> dict[str, dict]:
        """Per attribute with ground truth: how often the expert agreed, and the confusion counts: the
        honest estimate of its pseudo-labels' accuracy on this data, kept in the dataset's recipe.json."""
        return {
            name: {
                "n": n,
                "agree": self.gt_agree[name],
                "accuracy": round(self.gt_agree[name] / n, 4),
                "pairs": dict(self.gt_pairs.get(name, Counter()).most_common()),
            }
            for name, n in sorted(self.gt_kept.items())
            if n
        }

    def to_dict(self) -> dict:
        """JSON for the dataset's provenance (recipe.json `stages.label`); `lines` is what `data info` prints."""
        return {
            "records": self.records,
            "labelled": dict(self.labelled),
            "values": {k: dict(v) for k, v in self.values.items()},
            "uncertain": dict(self.uncertain),
            "ground_truth_agreement": self.agreement(),
            "lines": self.lines(),
        }

    def lines(self) -> list[str]:
        out = [f"records {self.records}"]
        for name in sorted(set(self.labelled) | set(self.gt_kept) | set(self.uncertain)):
            values = ", ".join(f"{k} {v}" for k, v in self.values.get(name, Counter()).most_common())
            line = (
                f"{name}: pseudo-labelled {self.labelled[name]} ({values or 'none'}); "
                f"uncertain {self.uncertain[name]}; ground truth kept {self.gt_kept[name]}"
            )
            if self.gt_kept[name]:
                line += (
                    f" (expert agrees on {self.gt_agree[name]}/{self.gt_kept[name]}, "
                    f"accuracy {self.gt_agree[name] / self.gt_kept[name]:.3f})"
                )
            out.append(line)
        return out


def label_records(
    records: Iterable[FaceRecord], config: LabelConfig | None = None, summary: LabelSummary | None = None, pipeline=None
) -> Iterator[FaceRecord]:
    """Yield the records with pseudo-labels added, in input order, batched through the experts of
    `facevlm.vision.pipeline` (the same crops and model the gallery ingest labels its faces with)."""
    from facevlm.vision.pipeline import FacePipeline, PipelineConfig

    config = config or LabelConfig()
    summary = summary if summary is not None else LabelSummary()
    if pipeline is None:
        pipeline = FacePipeline(
            PipelineConfig(
                expression="expression" in config.experts,
                expression_model=config.expression_model,
                expression_margin=config.crop_margin,
                batch_size=config.batch_size,
                device=config.device,
            )
        )
    for batch in batched(records, config.batch_size):
        summary.records += len(batch)
        faces = pipeline.label(
            [
                pipeline.face(
                    r.image, r.box, r.landmarks, r.det_score, r.n_faces, r.meta.get("landmark_format", "dlib5")
                )
                for r in batch
            ]
        )
        for record, face in zip(batch, faces):
            if face.expression is not None:
                _write(record, face.expression, config, summary)
        yield from batch


def _write(record: FaceRecord, expression, config: LabelConfig, summary: LabelSummary) -> None:
    label = expression.attribute()
    name = label.name
    record.meta.setdefault("pseudo_probs", {})[name] = expression.distribution()
    current = record.attrs().get(name)
    if current is not None and current.origin == "gt":
        summary.gt_kept[name] += 1
        summary.gt_agree[name] += int(current.value == label.value)
        summary.gt_pairs.setdefault(name, Counter())[f"{current.value}->{label.value}"] += 1
        return
    if label.prob < config.min_prob:
        summary.uncertain[name] += 1
        return
    record.set(name, label.value, label.origin, label.prob, label.model)
    summary.labelled[name] += 1
    summary.values.setdefault(name, Counter())[label.value] += 1


@click.command("label", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("in_dataset")
@click.argument("out_dataset")
@click.option(
    "--experts", default="expression", show_default=True, help=f"Comma-separated experts to run ({', '.join(EXPERTS)})."
)
@click.option(
    "--min-prob",
    type=float,
    default=0.0,
    show_default=True,
    help="Write no label when the expert's top probability is below this.",
)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def label_cmd(in_dataset: str, out_dataset: str, experts: str, min_prob: float, batch_size: int, device: str) -> None:
    """Pseudo-label IN_DATASET with pretrained experts and save to OUT_DATASET (ground truth is kept)."""
    from tqdm import tqdm

    from facevlm.data.store import iter_records, load_records, save_records

    config = LabelConfig(
        experts=[e.strip() for e in experts.split(",") if e.strip()],
        min_prob=min_prob,
        batch_size=batch_size,
        device=device,
    )
    ds = load_records(in_dataset)
    summary = LabelSummary()
    path = save_records(
        label_records(tqdm(iter_records(ds), total=len(ds), desc="label", unit="face"), config, summary), out_dataset
    )
    for line in summary.lines():
        click.echo(line)
    click.echo(f"saved {summary.records} records to {path}")
