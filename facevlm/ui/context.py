"""What the pages share: the page-wide inputs every handler reads, and the one way a failure is shown."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import gradio as gr

from facevlm.errors import FacevlmError

log = logging.getLogger("facevlm.ui")


@dataclass
class Context:
    """The gateway's URL and the page-wide inputs (the API key box, the gallery picker)."""

    api_url: str
    key: gr.Textbox
    gallery: gr.Dropdown


def failure(exc: BaseException) -> str:
    """The one line a user sees for a failed action: the gateway's or our own message, never a traceback
    (anything unexpected is logged here with its traceback and named by type only)."""
    if isinstance(exc, FacevlmError):
        return f"⚠️ {exc}"
    log.exception("unexpected error in a UI action", exc_info=exc)
    return f"⚠️ internal error in the UI ({type(exc).__name__}); see the UI's log"
