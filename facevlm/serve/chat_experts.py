"""Where the chat model is not trusted on expression or smiling, the gateway answers from the gallery's
expression expert instead of only saying it is unsure.

The chat model (FaceVLM) has not been shown to beat the majority guess on hand-labelled real faces for any
attribute (chat_competence), but the face pipeline's expression expert, fer-mini-xception, was trained on real
faces and beats it on expression and smiling, on the crop the pipeline gives it (docs/benchmarks.md "The
expression expert on the crop the product gives it"). So when the competence gate fires on those concepts and
the conversation's last image shows exactly one face, the gateway asks the expert, the same verdict a gallery
labels that face with (index.ingest.FaceExperts.expression), and says what it reads, naming the source and
its probability. Other concepts keep the gate's "I can't tell"; a photo with no face or several faces gets no
reading (whose face would it be?). A gateway without face detection or labelling (`detect: false` or
`label: false`) has no expert to ask and stays unsure.
"""

from __future__ import annotations

from typing import Any

# the data engine concepts (facevlm.data.lexicon) the expert answers, and the gallery attribute each reads
CONCEPTS = {"expression": "expression", "smiling": "Smiling"}
# One wording table for what the gateway says from the expert. The score is the model's own probability, not a
# measured accuracy, hence "model score" rather than "sure".
WORDING = {
    "sentence": "An expression model trained on real faces reads this face as {readings}.",
    "reading": "{value} (model score {prob:.2f})",
    "joiner": " and as ",
    "smiling:true": "smiling",
    "smiling:false": "not smiling",
}


def readings(state: Any, conv: Any, concepts: list[str]) -> list[dict[str, Any]]:
    """The expert's readings (chat_protocol.ExpertReading fields) for the `concepts` it answers, on the
    conversation's last image; [] when it answers none of them, is not loaded, or sees not one face."""
    wanted = [c for c in concepts if c in CONCEPTS]
    experts = getattr(state.galleries, "experts", None)
    if not wanted or experts is None or not conv.images:
        return []
    last = conv.images[-1]
    if last.image is None:
        return []
    if last.view is not None and last.view.detected and last.view.box is None:
        return []  # the model view found no face, or several
    box = last.view.box if last.view is not None else None
    verdict = experts.expression(last.image, cropped=last.face is not None, box=box)  # a gallery face: its crop
    if verdict is None:
        return []
    labels = {a.name: a for a in (verdict.attribute(), verdict.smiling())}
    out = []
    for concept in wanted:
        label = labels[CONCEPTS[concept]]
        out.append(
            {
                "concept": concept,
                "attribute": label.name,
                "value": label.value,
                "prob": round(float(label.prob), 4),
                "model": label.model,
            }
        )
    return out


def sentence(read: list[dict[str, Any]]) -> str:
    """One sentence for the readings: "... reads this face as smiling (model score 0.97) and as happy (...)"."""
    parts = [
        WORDING["reading"].format(value=WORDING.get(f"{r['concept']}:{r['value']}", r["value"]), prob=r["prob"])
        for r in read
    ]
    return WORDING["sentence"].format(readings=WORDING["joiner"].join(parts))
