"""The review web app in a real headless browser (Debian's chromium): sign in with a key, walk
the queue with the keyboard, give thumbs, a rating and a correction; text from answers is shown
as text, never run; a key without the reviewer role is turned away."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import browser_page


@pytest.fixture
def app(fb):
    fb.log("r1", question="Who approves models?", answer="An approver.")
    fb.log("r2", question="What is traced?", answer="<img src=x onerror=\"document.title='pwned'\">")
    fb.log("r3", question="Where do spans go?", answer="To the span store.")
    return fb, f"http://127.0.0.1:{fb.server.server.http_port}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_review_with_the_keyboard(app):
    fb, url = app
    with browser_page() as page:
        page.goto(url)
        page.fill("#api-key", fb.keys["reviewer"])
        page.click("#sign-in")
        expect(page.locator("#who")).to_have_text("Signed in as reviewer (reviewer)")
        expect(page.locator("#queue li")).to_have_count(3)
        assert page.locator("#queue li").count() == 3
        assert page.text_content("#question") == "Where do spans go?"  # newest first
        assert "the source text" in page.text_content("#sources")
        page.keyboard.press("u")
        page.keyboard.press("4")
        assert page.get_attribute("#thumb-up", "aria-pressed") == "true"
        page.keyboard.press("Enter")
        expect(page.locator("#status")).to_contain_text("Saved feedback/")
        expect(page.locator("#question")).to_have_text("What is traced?")
        assert page.text_content("#answer") == "<img src=x onerror=\"document.title='pwned'\">"
        assert page.title() == "llmops review"  # shown as text, not run
        page.keyboard.press("d")
        page.keyboard.press("e")
        page.keyboard.type("Every request, from the client through every service.")
        page.keyboard.press("Escape")
        page.keyboard.press("c")
        page.keyboard.type("markup in the answer")
        page.keyboard.press("Control+Enter")
        expect(page.locator("#question")).to_have_text("Who approves models?")
        page.keyboard.press("k")  # back to the corrected one: a second submit is a new visit
        assert page.text_content("#question") == "What is traced?"
    given = {f.request_id: f for f in fb.client().list()}
    assert set(given) == {"r3", "r2"}
    assert given["r3"].thumb == 1 and given["r3"].rating == 4 and given["r3"].reviewer == "reviewer"
    assert given["r2"].thumb == 2 and given["r2"].comment == "markup in the answer"
    assert given["r2"].corrected_answer == "Every request, from the client through every service."
    assert [r.request_id for r in fb.client().inferences(awaiting_review=True)] == ["r1"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_key_without_the_reviewer_role_is_turned_away(app):
    fb, url = app
    with browser_page() as page:
        page.goto(url)
        page.fill("#api-key", fb.keys["reader"])
        page.click("#sign-in")
        expect(page.locator("#signin-error")).to_contain_text("reviewer role")
        assert page.is_hidden("#review")
        page.fill("#api-key", "llm_not-a-key")
        page.click("#sign-in")
        expect(page.locator("#signin-error")).to_contain_text("not known")
    resp = httpx.get(f"{url}/api/queue")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthenticated"
    page_resp = httpx.get(url)
    assert "script-src 'self'" in page_resp.headers["content-security-policy"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_review_api_names_the_field_at_fault(app):
    """Bodies are checked against a declared model: a wrong type is 400 naming the field (`param`),
    an unknown field is refused, and a good body is saved once per idempotency key."""
    fb, url = app
    auth = {"authorization": f"Bearer {fb.keys['reviewer']}"}
    resp = httpx.post(f"{url}/api/feedback", headers=auth, json={"request_id": "r1", "rating": "four"})
    error = resp.json()["error"]
    assert resp.status_code == 400 and error["param"] == "rating" and error["code"] == "invalid_argument"
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    resp = httpx.post(f"{url}/api/feedback", headers=auth, json={"request_id": "r1", "labels": ["ok", 3]})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "labels[1]"
    resp = httpx.post(f"{url}/api/feedback", headers=auth, json={"request_id": "r1", "score": 3})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "score"
    resp = httpx.post(f"{url}/api/feedback", headers=auth, content=b"[1, 2]")
    assert resp.status_code == 400 and "JSON object" in resp.json()["error"]["message"]
    body = {"request_id": "r1", "thumb": "up", "rating": 5, "idempotency_key": "k1"}
    first = httpx.post(f"{url}/api/feedback", headers=auth, json=body)
    again = httpx.post(f"{url}/api/feedback", headers=auth, json=body)
    assert first.status_code == 200 and first.json() == again.json()
    resp = httpx.post(f"{url}/api/feedback", headers=auth, json={"request_id": "nope", "thumb": "up"})
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "not_found_error"
