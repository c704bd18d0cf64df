"""`facevlm bench vlm`: in-process FaceVLM generation speed (transformers `generate`, the model's chat
template), one face question per conversation, at several batch sizes, in bf16 autocast and float32 in
the same run. Prints Markdown rows for docs/benchmarks.md with the command; nothing is asserted.

Every conversation asks about a real sample photo (face crop) and generation is forced to the same length
(`min_new_tokens` = `max_new_tokens`), so tokens/s compares like with like across batch sizes and dtypes.
"""

from __future__ import annotations

import sys
import time

import click


@click.command(name="vlm")
@click.option("--model", default="facevlm-chat-small", show_default=True)
@click.option("--batches", default="1,8,32", show_default=True, help="Comma-separated batch sizes.")
@click.option("--new-tokens", default=32, show_default=True)
@click.option("--repeats", default=2, show_default=True, help="Timed runs per row (after one warm-up).")
def bench_vlm(model: str, batches: str, new_tokens: int, repeats: int) -> None:
    """Tokens/s of in-process generation per batch size, bf16 autocast vs float32."""
    import torch

    from facevlm.assets import path as asset_path
    from facevlm.image import open_image
    from facevlm.vlm.build import bf16_available
    from facevlm.vlm.inference import FaceChat

    photo = open_image(asset_path("samples") / "obama.jpg")
    chat = FaceChat(model, crop="auto")
    face = chat.prepare_image(photo)
    chat.crop = "never"
    conv = [
        {"role": "user", "content": [{"type": "image", "image": face}, {"type": "text", "text": "Describe this face."}]}
    ]
    sizes = [int(b) for b in batches.split(",") if b.strip()]
    dtypes = (["bf16"] if bf16_available(faster=False) else []) + ["fp32"]  # both, where bf16 runs
    click.echo(f"`{' '.join(['facevlm', 'bench', 'vlm'] + sys.argv[3:])}` ({torch.get_num_threads()} threads)\n")
    click.echo("| precision | batch | new tokens/s | s per batch | prompt tokens |")
    click.echo("|---|---|---|---|---|")
    for dtype in dtypes:
        chat.bf16 = dtype == "bf16"
        for size in sizes:
            kwargs = {"max_new_tokens": new_tokens}
            chat.model.generation_config.min_new_tokens = new_tokens
            chat.generate([conv] * size, **kwargs)  # warm-up
            start = time.perf_counter()
            for _ in range(repeats):
                replies = chat.generate([conv] * size, **kwargs)
            per = (time.perf_counter() - start) / repeats
            generated = sum(r.completion_tokens for r in replies)
            click.echo(f"| {dtype} | {size} | {generated / per:.1f} | {per:.2f} | {replies[0].prompt_tokens} |")
