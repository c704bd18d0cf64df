"""What the chat page shows of a reply's `facevlm` extension: search hits, a failed search, a withheld answer."""

from __future__ import annotations

from facevlm.ui.chat import outcome, search_results


def test_a_withheld_answer_is_said_as_such_with_the_models_words() -> None:
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "content": "I can't tell glasses reliably from a photo yet, so I won't guess.",
                    "facevlm": {"unsure": {"concepts": ["eyeglasses"], "model_reply": "Yes.", "evidence": None}},
                },
            }
        ]
    }
    hits, line = outcome(search_results(chunk))
    assert hits == [] and "about glasses is withheld" in line and "Yes." in line


def test_search_hits_and_a_failed_search() -> None:
    ran = {"tool_call": {}, "search": {"gallery": "g", "data": [{"id": "1"}]}, "error": None}
    assert outcome(ran) == ([{"id": "1"}], "searched gallery 'g': 1 face(s)")
    failed = {"tool_call": {}, "search": None, "error": {"code": "gallery_not_found", "message": "no gallery g"}}
    assert outcome(failed) == ([], "⚠️ the search could not run: no gallery g")
