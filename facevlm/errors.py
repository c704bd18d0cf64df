"""One exception type for everything a user can cause.

The CLI turns a FacevlmError into a one-line message and exit code 1; the gateway turns it into an
OpenAI-style JSON error with a 4xx status. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class FacevlmError(Exception):
    """A problem the user can fix: bad input, a missing asset, a registry that cannot be reached."""

    status_code: int = 400
    code: str = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class AssetError(FacevlmError):
    """An asset is missing, corrupt, or its source package cannot be fetched."""

    code = "asset_error"
    status_code = 503


class DataError(FacevlmError):
    """A dataset file is malformed; the message names the file and line."""

    code = "data_error"
