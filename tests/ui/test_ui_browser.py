"""The web UI in a real headless browser against a real gateway (tests/ui/conftest.py): the API key prompt,
a chat about a sample photo (its expression, then a retrieval question) answered by the tiny FaceVLM, the
chat photo stored only when asked, and the gallery page (upload, list, search grid, cluster + name, erase).

The tiny model's answers are not checked for content (it is a 25-step model), only that they arrive. The
result grid is checked on the gallery page's search, which renders real `/v1/faces/search` hits with the
same grid code a `face_search` inside a chat uses (facevlm/ui/grid.py), since whether the tiny model emits
a call is up to it."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.assets, pytest.mark.timeout(900)]

WAIT = 180_000  # ms: an in-process answer on a shared 2-core machine
QUERY = "a smiling person"
DECODED = "e.complete && e.naturalWidth > 0"  # an <img> the browser has fetched and decoded


def galleries(stack) -> list[str]:
    with stack.api() as api:
        return api.get("/healthz").json()["galleries"]


def faces(stack, gallery: str) -> list[dict]:
    with stack.api() as api:
        return api.get(f"/v1/galleries/{gallery}/faces", params={"limit": 100}).json()["data"]


def ask(page, text: str, photo: str | None = None) -> str:
    """Send one chat turn (optionally with a photo) and return the assistant's answer once it is complete."""
    from playwright.sync_api import expect

    bots = page.locator('#chatbot [data-testid="bot"]')
    before = bots.count()
    box = page.locator("#chat-input")
    if photo:
        box.locator("input[type=file]").set_input_files(photo)
        expect(box.locator("img")).to_be_visible(timeout=30_000)  # uploaded to the UI, not the gateway
    box.locator("textarea").fill(text)
    box.locator("textarea").press("Enter")
    expect(bots).to_have_count(before + 1, timeout=WAIT)
    answer = bots.nth(before)
    expect(answer).not_to_have_text("…", timeout=WAIT)
    expect(page.locator("#chat-input textarea")).to_be_editable(timeout=WAIT)
    page.wait_for_function("() => !document.querySelector('#chatbot .pending, #chat-note .pending')", timeout=WAIT)
    return answer.inner_text()


def loaded_images(page, selector: str) -> int:
    """How many images under `selector` the browser has actually decoded (not just <img> tags)."""
    return page.eval_on_selector_all(f"{selector} img", f"els => els.filter(e => {DECODED}).length")


def test_chat_and_gallery_pages_in_a_browser(stack, browser, tmp_path, capsys) -> None:
    from playwright.sync_api import expect

    from facevlm.paths import assets_dir
    from facevlm.ui.chat import outcome

    samples = assets_dir() / "samples"
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(stack.ui)

    # The gateway has keys: the UI says so, then works with the key typed in the page (never in a URL).
    status = page.locator("#status")
    expect(status).to_contain_text("needs an API key", timeout=60_000)
    page.locator("#api-key input").fill(stack.key)
    page.locator("#api-key input").press("Enter")
    expect(status).to_contain_text("connected", timeout=60_000)
    expect(page.locator("#chat-model input")).to_have_value(stack.chat_model)
    picker = page.locator("#gallery-pick input")
    picker.fill("family")
    picker.press("Enter")

    # Chat: a real sample photo, its expression, then a retrieval question; nothing is stored meanwhile.
    photo = samples / "obama.jpg"
    first = ask(page, "What is the facial expression of this person?", str(photo))
    assert first.strip() and "⚠️" not in first, first
    second = ask(page, "Find more photos of smiling people in my gallery.")
    assert second.strip() and "internal error" not in second, second
    with capsys.disabled():
        print(f"\nchat answers: {first!r} / {second!r} (search: {page.locator('#chat-note').inner_text()!r})")
    assert "Traceback" not in page.content()
    assert "family" not in galleries(stack)  # the chat photo went to the gateway in the request only
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)

    # The one button that stores the chat photo.
    page.locator("#chat-add").click()
    expect(page.locator("#chat-note")).to_contain_text("stored obama.jpg in gallery 'family'", timeout=WAIT)
    assert [f["source"] for f in faces(stack, "family")] == ["obama.jpg"]

    # Gallery page: upload two more sample photos, list them.
    page.get_by_role("tab", name="Gallery").click()
    page.locator("#gallery-upload input[type=file]").set_input_files(
        [str(samples / "grace_hopper.jpg"), str(samples / "biden.jpg")]
    )
    expect(page.locator("#gallery-upload tbody tr")).to_have_count(2, timeout=30_000)
    expect(page.locator("#gallery-upload")).not_to_contain_text("Uploading", timeout=30_000)
    page.locator("#gallery-add").click()
    note = page.locator("#gallery-note")
    expect(note).to_contain_text("gallery 'family': 3 face(s) from 3 photo(s)", timeout=WAIT)
    expect(page.locator("#gallery-faces img")).to_have_count(3)

    # Search: the grid shows the thumbnails of exactly the hits /v1/faces/search answers.
    page.locator("#gallery-query textarea").fill(QUERY)
    page.locator("#gallery-search").click()
    with stack.api() as api:
        hits = api.post("/v1/faces/search", json={"gallery": "family", "query": {"text": QUERY}, "top_k": 10})
    expected = [f"#{h['rank']} · face {h['id']} · " for h in hits.json()["data"]]
    assert len(expected) == 3
    # a face_search inside a chat carries this very body as message.facevlm.search (docs/api.md)
    assert outcome({"tool_call": None, "search": hits.json(), "error": None})[0] == hits.json()["data"]
    expect(note).to_contain_text(f"3 face(s) match “{QUERY}”", timeout=WAIT)
    results = page.locator("#gallery-results")
    expect(results.locator("img")).to_have_count(3)
    page.wait_for_function(f"() => [...document.querySelectorAll('#gallery-results img')].every(e => {DECODED})")
    assert loaded_images(page, "#gallery-results") == 3
    shown = results.inner_text()
    assert [c in shown for c in expected] == [True] * 3, (shown, expected)

    # Cluster the unlabelled faces and name the first cluster: its faces carry the name in the API.
    page.locator("#gallery-cluster").click()
    expect(note).to_contain_text("cluster(s) of 3 unlabelled face(s)", timeout=WAIT)
    page.locator("#gallery-clusters img").first.click()
    expect(note).to_contain_text("selected cluster", timeout=30_000)
    page.locator("#gallery-cluster-name textarea").fill("Grandma")
    page.locator("#gallery-name-cluster").click()
    expect(note).to_contain_text("“Grandma”", timeout=WAIT)
    assert "Grandma" in [f["identity"] for f in faces(stack, "family")]

    # Erase one face from the list.
    page.locator("#gallery-list").click()
    expect(page.locator("#gallery-faces img")).to_have_count(3, timeout=WAIT)
    page.locator("#gallery-faces img").first.click()
    expect(note).to_contain_text("selected face", timeout=30_000)
    page.locator("#gallery-delete-face").click()
    expect(note).to_contain_text("erased face(s)", timeout=WAIT)
    expect(page.locator("#gallery-faces img")).to_have_count(2, timeout=WAIT)
    assert len(faces(stack, "family")) == 2

    # An error from the API is one readable line, not a traceback.
    picker.fill("Not A Name!")
    picker.press("Enter")
    page.locator("#gallery-list").click()
    expect(note).to_contain_text("⚠️", timeout=WAIT)
    assert "Traceback" not in note.inner_text() and "HTTP 400" in note.inner_text()

    shot = tmp_path / "gallery.png"
    picker.fill("family")
    picker.press("Enter")
    page.locator("#gallery-search").click()
    expect(results.locator("img")).to_have_count(2, timeout=WAIT)
    page.screenshot(path=str(shot), full_page=True)
    with capsys.disabled():
        print(f"\nUI screenshots: {tmp_path / 'chat.png'} {shot}")
    assert shot.stat().st_size > 10_000 and (tmp_path / "chat.png").stat().st_size > 10_000
    assert not errors, errors
