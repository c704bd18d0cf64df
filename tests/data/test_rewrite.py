"""LLM caption rewrites: unfaithful rewrites are rejected and fall back, faithful ones kept; the
OpenAI-compatible backend over real HTTP; a short real SmolLM2-135M-Instruct run when assets exist."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from facevlm.data.caption import CaptionConfig, CaptionStats, caption_records, grammar_captions
from facevlm.data.facts import check, extract_facts
from facevlm.data.rewrite import FEW_SHOT, RewriteConfig, Rewriter, clean, judge, messages_for
from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord


def _face(rid: str = "f1") -> FaceRecord:
    r = FaceRecord(id=rid, image=None, source="t", licence="CC0")
    r.set("Eyeglasses", "true")
    r.set("hair_color", "black")
    r.set("expression", "happy")
    r.set("Wearing_Hat", "false")
    return r


CAPTION = "A person with black hair and glasses and a happy expression."
FACTS, CONFLICTED = extract_facts(_face().attributes)
STATED = [f for f in FACTS if f.value != "false"]

BAD = {  # crafted rewrites -> the reason they must be rejected
    "A cheerful-looking person with black hair.": "dropped_fact",  # glasses dropped (and happy -> no synonym)
    "A happy person with black hair and no glasses.": "contradiction",
    "A sad person with black hair and glasses.": "contradiction",  # another expression
    "A happy person with blond hair and glasses.": "contradiction",  # another hair colour
    "A happy person with black hair, glasses and a hat.": "contradiction",  # Wearing_Hat is false
    "A happy person with black hair, glasses and a beard.": "unsupported_claim",  # invented attribute
    "A happy woman with black hair and glasses.": "style",  # gendered
    "A photo of Anna, happy, with black hair and glasses.": "style",  # a name
    "": "empty",
    CAPTION: "unchanged",
    "A happy person with black hair and glasses. " * 6: "too_long",
}
GOOD = [
    "A happy person wearing glasses, with black hair.",
    "Wearing spectacles, this joyful person has black hair.",  # synonyms keep the facts
    "This person with black hair and eyeglasses looks happy, with no hat.",  # a true absence is fine
]


@pytest.mark.parametrize("candidate,reason", list(BAD.items()))
def test_unfaithful_rewrites_are_rejected(candidate, reason):
    r = judge(CAPTION, clean(candidate), STATED, FACTS, CONFLICTED)
    assert not r.accepted and r.reason == reason and r.text == CAPTION, r


@pytest.mark.parametrize("candidate", GOOD)
def test_faithful_rewrites_are_kept(candidate):
    r = judge(CAPTION, candidate, STATED, FACTS, CONFLICTED)
    assert r.accepted and r.text == candidate and r.reason == "ok", r


def test_hedges_must_survive():
    hedged = "A person with black hair. They seem to be wearing glasses and have a happy expression."
    assert judge(hedged, "A happy person with black hair and glasses.", STATED, FACTS).reason == "dropped_hedge"
    kept = judge(hedged, "A person with black hair who seems happy and appears to wear glasses.", STATED, FACTS)
    assert kept.accepted, kept


def test_clean_strips_chatter():
    assert clean('Sure! Here is the rewrite: "A person with glasses."\nHope this helps') == "A person with glasses."
    assert clean("Rewritten:   A  person.") == "A person."


def test_prompt_is_a_chat_with_faithful_examples():
    msgs = messages_for(CAPTION)
    assert msgs[0]["role"] == "system" and msgs[-1] == {"role": "user", "content": f"Rewrite: {CAPTION}"}
    assert len(msgs) == 2 + 2 * len(FEW_SHOT)
    for src, dst in FEW_SHOT:  # the few-shot answers themselves pass the checker against their source
        claims_src = {(f.concept, f.value) for f in _facts_of(src)}
        assert claims_src and check(dst, [], [], strict=False).ok
        assert {(c.concept, min(c.values)) for c in _claims(dst)} >= claims_src


def _claims(text):
    from facevlm.data.facts import find_claims

    return find_claims(text)


def _facts_of(text):
    from facevlm.data.facts import Fact

    return [Fact(c.concept, min(c.values)) for c in _claims(text) if not c.negated]


def test_config_validation():
    with pytest.raises(FacevlmError, match="base_url"):
        RewriteConfig(backend="openai")
    with pytest.raises(FacevlmError, match="backend"):
        RewriteConfig(backend="llama.cpp")


class _ChatServer:
    """An OpenAI-compatible /v1/chat/completions endpoint that replies from a script (or a bad default),
    so the real openai client, batching and fallback run end to end over HTTP."""

    def __init__(self, replies: dict[str, list[str]]):
        self.requests: list[dict] = []
        seen: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                caption = body["messages"][-1]["content"].removeprefix("Rewrite: ")
                k = seen[caption] = seen.get(caption, -1) + 1
                script = replies.get(caption, ["A smiling woman."])  # the k-th request gets the k-th reply
                reply = script[min(k, len(script) - 1)]
                data = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}
                        ],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_openai_backend_rewrites_and_falls_back():
    records = [_face(f"f{i}") for i in range(3)]
    cfg = CaptionConfig(n=2, negatives=0.0)
    grammar = {r.id: [c for c, _ in grammar_captions(r, cfg)] for r in records}
    first = grammar["f0"][0]
    faithful = "With black hair and glasses, this person looks happy."
    with _ChatServer({first: [faithful]}) as server:
        cfg.rewrite = RewriteConfig(model="smollm2", backend="openai", base_url=server.url, batch_size=4)
        stats = CaptionStats()
        out = list(caption_records(records, cfg, stats))
    assert len(server.requests) == sum(len(v) for v in grammar.values())
    assert server.requests[0]["temperature"] == 0.0 and server.requests[0]["max_tokens"] == 48
    assert out[0].captions[0] == faithful and out[0].meta["caption_origin"][0] == "rewrite:smollm2"
    for r in out:  # every other caption fell back to its grammar caption
        for i, c in enumerate(r.captions):
            if (r.id, i) != ("f0", 0):
                assert c == grammar[r.id][i] and r.meta["caption_origin"][i] == "template"
    assert stats.rewrite["ok"] == 1 and stats.rewrite["dropped_fact"] == len(server.requests) - 1


def test_rejected_rewrites_are_resampled_when_asked():
    face = _face("r")
    ((caption, used),) = grammar_captions(face, CaptionConfig(n=1, negatives=0.0))
    later = "With black hair and glasses, this person looks happy."
    with _ChatServer({caption: ["A sad person.", later]}) as server:
        rw = Rewriter(RewriteConfig(model="m", backend="openai", base_url=server.url, retries=2, seed=3))
        (result,) = rw.rewrite([(caption, used, FACTS, CONFLICTED)])
    assert result.accepted and result.text == later and rw.retried_ok == 1 and rw.counts == {"ok": 1}
    assert [r["temperature"] for r in server.requests] == [0.0, 0.7]  # no third call once accepted
    assert [r["seed"] for r in server.requests] == [3, 4]


def test_openai_backend_unreachable_is_one_line_error():
    rw = Rewriter(RewriteConfig(model="m", backend="openai", base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(FacevlmError, match="rewrite server") as err:
        rw.rewrite([(CAPTION, STATED, FACTS, CONFLICTED)])
    assert "\n" not in str(err.value)


@pytest.mark.assets
@pytest.mark.slow
def test_smollm2_rewrite_is_checked(assets_home):
    """A real (tiny) run of the default model on 3 captions: greedy, batched, left-padded."""
    records = [_face("a"), _face("b")]
    records[1].set("Smiling", "true")
    records[1].set("Wearing_Hat", "true")
    items = []
    for r in records:
        facts, conflicted = extract_facts(r.attributes)
        items += [(c, used, facts, conflicted) for c, used in grammar_captions(r, CaptionConfig(n=2))][:2]
    rw = Rewriter(RewriteConfig(max_new_tokens=40, batch_size=4, threads=1))
    results = rw.rewrite(items[:3])
    assert len(results) == 3 and sum(rw.counts.values()) == 3
    assert any(r.candidate for r in results)  # the model produced text
    for (caption, stated, facts, conflicted), r in zip(items, results):
        if r.accepted:
            assert r.text != caption and check(r.text, stated, facts, conflicted=conflicted).ok
        else:
            assert r.text == caption
