"""The UI's only way to the gateway: its public HTTP API, with the user's key in the Authorization header.

The UI never imports the gateway (import-linter keeps `facevlm.ui` beside `facevlm.engine`, below
`facevlm.serve`), so what a user sees in the browser is exactly what any API client gets, and the UI works
against a gateway on another machine. Every failure (an OpenAI-style error JSON, a refused connection, a
timeout, a broken stream) becomes a `GatewayError` whose one-line message the pages show as is.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from PIL import Image

from facevlm.errors import FacevlmError
from facevlm.image import ImageLimits, decode_image

THUMB_LIMITS = ImageLimits(max_bytes=4 * 1024 * 1024, max_pixels=4_000_000)  # a stored thumbnail is 128 px


class GatewayError(FacevlmError):
    """The gateway refused a request or could not be reached; the message is meant for the user."""

    code = "gateway_error"


def error_message(response: httpx.Response) -> str:
    """The readable line for a failed response: the gateway's OpenAI error message, else the status."""
    try:
        detail = response.json().get("error") or {}
        message = detail.get("message") if isinstance(detail, dict) else None
    except (ValueError, AttributeError):
        message = None
    if response.status_code == 401:
        return f"the gateway needs a valid API key (401){': ' + message if message else ''}"
    return f"{message or response.reason_phrase or 'request failed'} (HTTP {response.status_code})"


class Gateway:
    """An async client of one gateway for one user action: `async with Gateway(url, key) as gw: ...`.

    `key` is sent as `Authorization: Bearer` (never in a URL); "" sends no header (a gateway without keys)."""

    def __init__(self, url: str, key: str = "", timeout: float = 300.0):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {key.strip()}"} if key and key.strip() else {}
        self._client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0)
        )

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise GatewayError(f"the gateway at {self.url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise GatewayError(f"cannot reach the gateway at {self.url} ({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise GatewayError(error_message(response), status_code=response.status_code)
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise GatewayError(f"{method} {path}: the gateway answered something that is not JSON") from None

    # --- routes -----------------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """`/healthz` (no key needed): the embedding model's id and the gallery names."""
        return await self.json("GET", "/healthz")

    async def models(self) -> list[dict[str, Any]]:
        return (await self.json("GET", "/v1/models")).get("data", [])

    async def search(self, arguments: dict[str, Any]) -> list[dict[str, Any]]:
        """One `face_search` call (docs/search-call.md) run by `/v1/faces/search`: its hits."""
        return (await self.json("POST", "/v1/faces/search", json=arguments)).get("data", [])

    async def faces(self, gallery: str, limit: int = 200, after: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        return await self.json("GET", f"/v1/galleries/{gallery}/faces", params=params)

    async def add_photos(
        self, gallery: str, photos: list[tuple[str, bytes]], identity: str | None = None
    ) -> dict[str, Any]:
        """Store photos in `gallery` (created if new): the only call of the UI that stores an image."""
        files = [("file", (name, data)) for name, data in photos]
        form = {"identity": identity} if identity else {}
        return await self.json("POST", f"/v1/galleries/{gallery}/faces", files=files, data=form)

    async def delete_face(self, gallery: str, face_id: str) -> dict[str, Any]:
        return await self.json("DELETE", f"/v1/galleries/{gallery}/faces/{face_id}")

    async def delete_image(self, gallery: str, image_id: str) -> dict[str, Any]:
        return await self.json("DELETE", f"/v1/galleries/{gallery}/images/{image_id}")

    async def cluster(self, gallery: str) -> dict[str, Any]:
        return await self.json("POST", f"/v1/galleries/{gallery}/clusters", json={})

    async def clusters(self, gallery: str) -> dict[str, Any]:
        return await self.json("GET", f"/v1/galleries/{gallery}/clusters")

    async def name_cluster(self, gallery: str, cluster_id: str, identity: str) -> dict[str, Any]:
        path = f"/v1/galleries/{gallery}/clusters/{cluster_id}/name"
        return await self.json("POST", path, json={"identity": identity})

    async def image(self, url: str) -> Image.Image:
        """A stored thumbnail or crop, fetched with the key (the browser never holds it) and decoded by
        the one image opener as untrusted bytes."""
        response = await self.request("GET", url)
        return decode_image(response.content, THUMB_LIMITS, where=url).image

    async def chat_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST /v1/chat/completions with `stream: true`: each server-sent chunk as a dict, until [DONE].
        An error event in the stream (`{"error": ...}`) raises GatewayError like an error status."""
        try:
            async with self._client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise GatewayError(error_message(response), status_code=response.status_code)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise GatewayError("the chat stream carried a chunk that is not JSON") from None
                    if isinstance(chunk, dict) and isinstance(chunk.get("error"), dict):
                        raise GatewayError(chunk["error"].get("message") or "the chat stream failed")
                    yield chunk
        except httpx.TimeoutException:
            raise GatewayError(f"the gateway at {self.url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise GatewayError(f"the chat stream from {self.url} broke off ({type(exc).__name__})") from None
