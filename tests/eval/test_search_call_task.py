"""Search requests in chat are graded by the gateway's own schema: valid, right intent, no names."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facevlm.data.search_call import SearchCall
from facevlm.eval.datasets import EvalDataset
from facevlm.eval.tasks import search_call


def _data(n: int = 12) -> EvalDataset:
    attrs = {
        "Smiling": np.asarray(["true", "false"] * (n // 2), dtype=object),
        "Eyeglasses": np.asarray(["false", "true", "true"] * (n // 3), dtype=object),
        "hair_color": np.asarray(["black", "blond", "brown"] * (n // 3), dtype=object),
    }
    ids = np.asarray([f"person{i % 4}" for i in range(n)], dtype=object)
    return EvalDataset("t", "test", [None] * n, [f"f{i}" for i in range(n)], attrs, ids, [[] for _ in range(n)], "fp")


def _tool(call: SearchCall | dict) -> dict:
    if isinstance(call, SearchCall):
        return call.to_tool_call()
    return {"type": "function", "function": {"name": "face_search", "arguments": json.dumps(call)}}


def test_requests_use_held_out_wordings_and_cover_the_request_kinds():
    requests = search_call.build_requests(_data(60))
    assert len(requests) >= 40
    kinds = {r.kind for r in requests}
    assert {"ret.same", "ret.alike", "ret.id", "ident"} <= kinds
    assert all(r.with_image == (r.kind != "ret.id") for r in requests)


def test_the_expected_call_is_valid_and_right_and_a_wrong_one_is_not():
    (req,) = [r for r in search_call.build_requests(_data(60)) if r.kind == "ret.same"][:1]
    assert search_call.grade([_tool(req.expected)], req.expected) == (True, True)
    alike = req.expected.arguments_dict()
    alike["query"]["match"] = "look_alike"
    assert search_call.grade([_tool(alike)], req.expected) == (True, False)
    assert search_call.grade([], req.expected) == (False, False)
    assert search_call.grade([_tool(req.expected)] * 2, req.expected) == (False, False)
    broken = {"type": "function", "function": {"name": "face_search", "arguments": '{"query": 3}'}}
    assert search_call.grade([broken], req.expected) == (False, False)


@pytest.mark.parametrize(("text", "named"), [("That is person2.", True), ("I can't tell who that is.", False)])
def test_a_reply_naming_a_labelled_identity_is_caught(text, named):
    assert search_call._names_someone(text, _data()) is named


def test_task_scores_a_model_that_answers_every_request_right():
    data = _data(24)
    requests = {r.text: r for r in search_call.build_requests(data)}

    class Oracle:
        name, batch_size = "oracle", 4

        def answer_calls(self, images, questions):
            return [(None, [_tool(requests[q].expected)]) for q in questions]

    from facevlm.eval.suite import TaskSpec
    from facevlm.eval.tasks import Context

    (result,) = search_call.run(Oracle(), data, TaskSpec(task="search_call"), Context(n_boot=50))
    assert result.metrics["valid"] == 1.0 and result.metrics["intent"] == 1.0 and result.metrics["no_name"] == 1.0
