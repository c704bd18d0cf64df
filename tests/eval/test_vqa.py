"""VQA through an OpenAI-compatible endpoint: a minimal chat-completions server started by the test
(stopped at the end) answers by rule, so the expected per-type accuracy is known exactly."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import yaml


class _Handler(BaseHTTPRequestHandler):
    seen_images: list = []

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        from PIL import Image

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][0]["content"]
        url = next(p["image_url"]["url"] for p in content if p["type"] == "image_url")
        question = next(p["text"] for p in content if p["type"] == "text")
        assert url.startswith("data:image/png;base64,")
        _Handler.seen_images.append(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size)
        reply = "Yes, I think so." if "yes or no" in question else "Happy."
        payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                   "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": reply}}],
                   "usage": {"prompt_tokens": 10, "completion_tokens": len(reply.split()), "total_tokens": 14}}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_vqa_over_openai_endpoint(tmp_path, eval_home, stored_faces, chat_server):
    from facevlm.eval.datasets import DatasetSpec, load_dataset
    from facevlm.eval.suite import load_suite, run_suite

    suite = {"name": "vqa", "n_boot": 50, "min_group_size": 3,
             "datasets": [{"name": "faces", "source": "store", "ref": str(stored_faces)}],
             "models": [{"name": "endpoint", "kind": "chat", "model": "any-model", "url": chat_server}],
             "tasks": [{"task": "vqa", "attributes": ["expression", "Smiling"]},
                       {"task": "identity"},
                       {"task": "efficiency", "n_images": 4, "n_queries": 2, "repeats": 1}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(suite))
    summary = run_suite(load_suite(tmp_path / "s.yaml"), tmp_path / "run", log=lambda _: None)
    assert [s["task"] for s in summary["skipped"]] == ["identity"]  # a chat model has no embeddings
    result = json.loads((tmp_path / "run" / "faces__endpoint__vqa.json").read_text())
    data = load_dataset(DatasetSpec(name="faces", source="store", ref=str(stored_faces)))
    expr, smiling = data.labels("expression"), data.labels("Smiling")
    m = result["metrics"]
    assert m["accuracy/expression"] == pytest.approx(np.mean(expr == "happy"))
    assert m["accuracy/Smiling"] == pytest.approx(np.mean(smiling == "true"))
    assert m["accuracy"] == pytest.approx((np.sum(expr == "happy") + np.sum(smiling == "true")) / (2 * len(data)))
    assert m["tokens_per_s"] > 0 and result["ci"]["accuracy"][0] <= m["accuracy"] <= result["ci"]["accuracy"][1]
    assert set(result["groups"]) == {"gender_presentation", "skin_tone"}
    assert _Handler.seen_images and all(s == (32, 32) for s in _Handler.seen_images)
    eff = json.loads((tmp_path / "run" / "faces__endpoint__efficiency.json").read_text())["metrics"]
    assert eff["tokens_per_s"] > 0


def test_vqa_endpoint_down_is_a_clear_error(tmp_path, stored_faces):
    from facevlm.errors import FacevlmError
    from facevlm.eval.models import ModelSpec, build_model

    model = build_model(ModelSpec(name="dead", kind="chat", model="m", url="http://127.0.0.1:9/v1"))
    from PIL import Image

    with pytest.raises(FacevlmError, match="chat request to http://127.0.0.1:9/v1 failed"):
        model.answer(Image.new("RGB", (8, 8)), "hi?")
