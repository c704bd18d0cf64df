"""`facevlm data label`: pseudo-label attributes with pretrained experts.

Every label is written with `origin="pseudo"`, the expert's probability and its name, through
`FaceRecord.set`, which never overwrites ground truth. Where ground truth exists the expert still runs,
and the agreement is reported: the one honest estimate of how good the pseudo-labels are on this data.
The full class distribution goes to `meta["pseudo_probs"][attribute]` for soft-label training.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import click

from facevlm.data.schema import EXPRESSIONS, FaceRecord
from facevlm.errors import FacevlmError

EXPERTS = ("expression",)


@dataclass
class LabelConfig:
    experts: list[str] = field(default_factory=lambda: ["expression"])
    expression_model: str = "fer-mini-xception"
    min_prob: float = 0.0  # below this top-class probability no label is written (counted as "uncertain")
    crop_margin: float = 0.1  # see vision.expression.expression_crop
    batch_size: int = 128
    device: str = "cpu"


@dataclass
class LabelSummary:
    records: int = 0
    labelled: Counter = field(default_factory=Counter)  # attribute -> pseudo-labels written
    values: dict[str, Counter] = field(default_factory=dict)  # attribute -> value -> count
    uncertain: Counter = field(default_factory=Counter)  # attribute -> below min_prob
    gt_kept: Counter = field(default_factory=Counter)  # attribute -> records whose ground truth was kept
    gt_agree: Counter = field(default_factory=Counter)  # attribute -> expert agrees with ground truth

    def lines(self) -> list[str]:
        out = [f"records {self.records}"]
        for name in sorted(set(self.labelled) | set(self.gt_kept) | set(self.uncertain)):
            values = ", ".join(f"{k} {v}" for k, v in self.values.get(name, Counter()).most_common())
            line = (f"{name}: pseudo-labelled {self.labelled[name]} ({values or 'none'}); "
                    f"uncertain {self.uncertain[name]}; ground truth kept {self.gt_kept[name]}")
            if self.gt_kept[name]:
                line += f" (expert agrees on {self.gt_agree[name]}/{self.gt_kept[name]})"
            out.append(line)
        return out


def label_records(records: Iterable[FaceRecord], config: LabelConfig | None = None,
                  summary: LabelSummary | None = None, expression_model=None) -> Iterator[FaceRecord]:
    """Yield the records with pseudo-labels added, in input order, batched through the experts."""
    config = config or LabelConfig()
    summary = summary if summary is not None else LabelSummary()
    unknown = [e for e in config.experts if e not in EXPERTS]
    if unknown:
        raise FacevlmError(f"experts: {', '.join(unknown)} unknown; available: {', '.join(EXPERTS)}")
    if "expression" in config.experts and expression_model is None:
        from facevlm.vision.expression import ExpressionModel

        expression_model = ExpressionModel(config.expression_model, config.device, config.batch_size)
    batch: list[FaceRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= config.batch_size:
            yield from _label_batch(batch, config, summary, expression_model)
            batch = []
    if batch:
        yield from _label_batch(batch, config, summary, expression_model)


def _crop(record: FaceRecord, margin: float):
    from facevlm.data.store import open_image
    from facevlm.vision.expression import expression_crop

    image = open_image(record.image)
    if record.box is None:
        return image  # already a face crop
    return expression_crop(image, record.box, margin)


def _label_batch(batch: list[FaceRecord], config: LabelConfig, summary: LabelSummary,
                 expression_model) -> list[FaceRecord]:
    summary.records += len(batch)
    if expression_model is not None:
        probs = expression_model.predict([_crop(r, config.crop_margin) for r in batch])
        for record, row in zip(batch, probs):
            _write(record, "expression", EXPRESSIONS, row, expression_model.name, config, summary)
    return batch


def _write(record: FaceRecord, name: str, classes: tuple[str, ...], row, model: str, config: LabelConfig,
           summary: LabelSummary) -> None:
    best = int(row.argmax())
    value, prob = classes[best], float(row[best])
    record.meta.setdefault("pseudo_probs", {})[name] = {c: round(float(p), 4) for c, p in zip(classes, row)}
    current = record.attrs().get(name)
    if current is not None and current.origin == "gt":
        summary.gt_kept[name] += 1
        summary.gt_agree[name] += int(current.value == value)
        return
    if prob < config.min_prob:
        summary.uncertain[name] += 1
        return
    record.set(name, value, origin="pseudo", prob=min(1.0, prob), model=model)
    summary.labelled[name] += 1
    summary.values.setdefault(name, Counter())[value] += 1


@click.command("label", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("in_dataset")
@click.argument("out_dataset")
@click.option("--experts", default="expression", show_default=True,
              help=f"Comma-separated experts to run ({', '.join(EXPERTS)}).")
@click.option("--min-prob", type=float, default=0.0, show_default=True,
              help="Write no label when the expert's top probability is below this.")
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def label_cmd(in_dataset: str, out_dataset: str, experts: str, min_prob: float, batch_size: int, device: str) -> None:
    """Pseudo-label IN_DATASET with pretrained experts and save to OUT_DATASET (ground truth is kept)."""
    from tqdm import tqdm

    from facevlm.data.store import iter_records, load_records, save_records

    config = LabelConfig(experts=[e.strip() for e in experts.split(",") if e.strip()], min_prob=min_prob,
                         batch_size=batch_size, device=device)
    ds = load_records(in_dataset)
    summary = LabelSummary()
    path = save_records(label_records(tqdm(iter_records(ds), total=len(ds), desc="label", unit="face"),
                                      config, summary), out_dataset)
    for line in summary.lines():
        click.echo(line)
    click.echo(f"saved {summary.records} records to {path}")
