"""In-process chat: replies parse like an OpenAI server's, batched generation equals one-by-one, and
`facevlm chat` answers (or fails in one line) from the command line."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import draw_face

from facevlm.vlm.inference import FaceChat, model_view, parse_reply, view_detector


def test_tool_call_becomes_an_openai_tool_call_and_text_is_kept():
    call = '{"name": "face_search", "arguments": {"query": {"text": "smiling"}, "top_k": 5}}'
    raw = f"Sure.<tool_call>\n{call}\n</tool_call>"
    text, calls = parse_reply(raw)
    assert text == "Sure."
    (call,) = calls
    assert call["type"] == "function" and call["function"]["name"] == "face_search"
    assert json.loads(call["function"]["arguments"]) == {"query": {"text": "smiling"}, "top_k": 5}


def test_a_broken_tool_call_stays_text():
    text, calls = parse_reply("<tool_call>{not json}</tool_call>")
    assert calls == [] and "not json" in text


def test_model_view_crops_a_single_face_and_keeps_a_group_photo_whole(assets_home):
    from facevlm import assets
    from facevlm.image import open_image
    from facevlm.vision.crop import face_crop

    photos = {s["file"].rsplit("/", 1)[-1]: s["path"] for s in assets.samples()}
    detector = view_detector()
    single, group = open_image(photos["grace_hopper.jpg"]), open_image(photos["multi_face.jpg"])
    (face,) = detector.detect_batch([single])[0]
    crop, box, _ = model_view(single, detector)
    assert crop.size == face.crop.size and crop.tobytes() == face.crop.tobytes() and box == face.box
    assert crop.tobytes() == face_crop(single, face.box).tobytes()  # the training crop rule
    assert model_view(group, detector) == (group, None, True)


def test_model_view_detects_a_picture_once_and_gives_the_same_crop_again(assets_home):
    from facevlm import assets
    from facevlm.image import open_image
    from facevlm.serve.chat_serving import Recent

    photos = {s["file"].rsplit("/", 1)[-1]: s["path"] for s in assets.samples()}
    detector = view_detector()
    calls = []
    detect = detector.detect_batch
    detector.detect_batch = lambda images: calls.append(len(images)) or detect(images)
    single, group = open_image(photos["grace_hopper.jpg"]), open_image(photos["multi_face.jpg"])
    seen = Recent(2)
    first = model_view(single, detector, seen)
    again = model_view(single.copy(), detector, seen)  # the same pixels, another object: the next chat turn
    assert calls == [1] and again.box == first.box is not None
    assert again.picture.tobytes() == first.picture.tobytes() and again.picture.size == first.picture.size
    assert model_view(group, detector, seen).picture is group and model_view(group, detector, seen).picture is group
    assert calls == [1, 1] and all(isinstance(k, bytes) and len(k) == 16 for k in seen)  # digests, no pixels
    flipped = single.transpose(0)  # other pixels: detected anew
    model_view(flipped, detector, seen)
    assert calls == [1, 1, 1] and len(seen) == 2  # the oldest outcome was dropped


@pytest.fixture(scope="module")
def chat(tiny_vlm) -> FaceChat:
    # float32: batched == one-by-one is exact only there (bf16 rounding can flip a near-tie of a random model)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEVLM_VLM_FP32", "1")
        return FaceChat(str(tiny_vlm["sft"]), crop="never")


def test_batched_generation_matches_one_by_one(chat):
    faces = [draw_face(i % 2 == 0, i % 3 == 0, "black", random.Random(i)) for i in range(3)]
    questions = ["Is this person smiling?", "Do they wear glasses?", "Describe this face."]
    convs = [
        [{"role": "user", "content": [{"type": "image", "image": f}, {"type": "text", "text": q}]}]
        for f, q in zip(faces, questions)
    ]
    batched = chat.generate(convs, max_new_tokens=8)
    single = [chat.generate([c], max_new_tokens=8)[0] for c in convs]
    assert [r.text for r in batched] == [r.text for r in single]
    assert all(r.completion_tokens > 0 and r.prompt_tokens > 0 for r in batched)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "facevlm.cli", "chat", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_answers_with_the_trained_model(tiny_vlm, tmp_path: Path):
    photo = tmp_path / "face.png"
    draw_face(True, True, "blond", random.Random(5)).save(photo)
    out = _cli("--model", str(tiny_vlm["sft"]), "--image", str(photo), "--no-crop", "--json", "Is this person smiling?")
    assert out.returncode == 0, out.stderr[-2000:]
    reply = json.loads(out.stdout.strip().splitlines()[-1])
    assert reply["usage"]["completion_tokens"] > 0 and (reply["text"] or reply["tool_calls"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "/no/such.jpg", "Smiling?"], "/no/such.jpg: cannot read"),
        (["--image", "{text}", "Smiling?"], "not a supported image"),
        (["--image", "{png}"] * 5 + ["Smiling?"], "5 images given; at most 4"),
        (["--image", "{png}", "   "], "the question is empty"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, args, message):
    text, png = tmp_path / "notes.jpg", tmp_path / "face.png"
    text.write_text("not an image")
    draw_face(False, False, "black", random.Random(0)).save(png)
    out = _cli(*[a.format(text=text, png=png) for a in args])
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ") and message in out.stderr, out.stderr
