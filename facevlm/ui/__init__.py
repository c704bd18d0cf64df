"""The chat web UI (gradio): a client of the gateway's HTTP API, served alone (`facevlm ui`) or mounted
on a FastAPI app under /ui (`facevlm.ui.app.mount`). It never imports the gateway (docs/ui.md)."""
