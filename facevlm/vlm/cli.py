"""`facevlm chat`: ask the FaceVLM model about face photos, in process (no server).

Every bad input is a one-line `error: ...` (the top-level command turns FacevlmError into that): a
missing or unreadable file, a file that is not an image, more images than the model is asked to take, an
empty question. Images are opened before the model loads, so a typo costs no model load.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from facevlm.errors import FacevlmError
from facevlm.image import open_image
from facevlm.lazycli import HELP_OPTIONS

MAX_IMAGES = 4  # one tile each: four faces already make the longest prompts the model was tuned on


@click.command(name="chat", context_settings=HELP_OPTIONS)
@click.argument("question")
@click.option("--image", "images", multiple=True, type=click.Path(path_type=Path), help="A photo (repeatable).")
@click.option("--model", default="facevlm-chat-small", show_default=True, help="Model folder, name or hub id.")
@click.option("--adapter", default=None, help="A peft LoRA folder to apply on top of --model.")
@click.option("--max-tokens", type=click.IntRange(1, 1024), default=128, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.0, show_default=True)
@click.option("--no-crop", is_flag=True, help="Give the model the photo whole (default: the face's crop).")
@click.option("--json", "as_json", is_flag=True, help="Print the reply as JSON (text, tool_calls, tokens).")
def chat(
    question: str,
    images: tuple[Path, ...],
    model: str,
    adapter: str | None,
    max_tokens: int,
    temperature: float,
    no_crop: bool,
    as_json: bool,
) -> None:
    """Ask QUESTION about the --image photos, e.g. `facevlm chat --image me.jpg "Is she smiling?"`. A search
    request ("find more photos of this person") answers with a `face_search` call, printed as JSON."""
    if not question.strip():
        raise FacevlmError("the question is empty")
    if len(images) > MAX_IMAGES:
        raise FacevlmError(f"{len(images)} images given; at most {MAX_IMAGES}")
    opened = [open_image(path) for path in images]

    from facevlm.vlm.inference import FaceChat

    reply = FaceChat(model, adapter=adapter, crop="never" if no_crop else "auto").ask(
        opened, question, max_new_tokens=max_tokens, temperature=temperature
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "text": reply.text,
                    "tool_calls": reply.tool_calls,
                    "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens},
                }
            )
        )
        return
    if reply.text:
        click.echo(reply.text)
    for call in reply.tool_calls:
        click.echo(f"{call['function']['name']}({call['function']['arguments']})")
