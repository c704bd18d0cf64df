"""`facevlm data …`: each step of the data engine is a command; `build` runs a whole recipe."""

from facevlm.lazycli import lazy_group

data = lazy_group(
    "data",
    "Data engine: synthesise, import, detect, label, caption, QA, split, export.",
    {
        "build": ("facevlm.data.recipe:build", "Run a data/*.yaml recipe end to end into a stored dataset."),
        "synth": ("facevlm.data.synth.cli:synth", "Render synthetic faces with exact labels."),
        "import": ("facevlm.data.adapters.cli:import_cmd", "Read a real dataset as distributed into the schema."),
        "detect": ("facevlm.data.detect:detect_cmd", "Detect and align faces; size/confidence filters."),
        "label": ("facevlm.data.label:label_cmd", "Pseudo-label attributes with pretrained experts."),
        "caption": ("facevlm.data.caption:caption_cmd", "Grammar-template captions (+ optional LLM rewrite)."),
        "qa": ("facevlm.data.qa:qa_cmd", "Face question-answer chat samples from attributes."),
        "split": ("facevlm.data.splits:split_cmd", "Identity-disjoint splits with near-duplicate removal."),
        "export": ("facevlm.data.export:export_cmd", "Export CSV/webdataset shards or JSONL chat samples."),
        "info": ("facevlm.data.store:info_cmd", "Summarise a stored dataset (counts per attribute)."),
    },
)
