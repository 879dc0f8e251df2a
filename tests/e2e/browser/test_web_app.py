"""The marketplace in a real browser, through the app's production server and the platform's gateway."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import expect

from ..conftest import PASSWORD, create_listing, new_account, poll
from .conftest import Pages, WebApp, routed_web_app

expect.set_options(timeout=15_000)  # a shared, loaded machine
ACCESS_COOKIE = "__Host-mp_access"
REFRESH_COOKIE = "__Host-mp_refresh"


def register(page: Any, web: WebApp, who: str) -> str:
    email = f"{who}-{uuid.uuid4().hex[:8]}@example.com"
    page.goto(web.url("/register"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return email


def log_in(page: Any, web: WebApp, email: str) -> None:
    page.goto(web.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def pay_with(page: Any, number: str, *, double: bool = False) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MM/YY)").fill("12/30")
    page.get_by_label("CVC").fill("123")
    button = page.get_by_role("button", name=re.compile(r"^Pay "))
    button.dblclick() if double else button.click()


def payment_posts(web: WebApp, page_url: str) -> int:
    """Server Action calls (POSTs) the app logged for a listing page."""
    path = page_url.removeprefix(web.origin)
    lines = [json.loads(line) for line in web.log.read_text().splitlines() if line.startswith("{")]
    return sum(1 for e in lines if e.get("msg") == "request" and e["method"] == "POST" and e["path"] == path)


def test_sell_find_chat_and_buy(web: WebApp, pages: Pages) -> None:
    title = f"Lamp {uuid.uuid4().hex[:10]}"
    seller = pages.new()
    email = register(seller, web, "seller")
    seller.get_by_role("button", name="Log out").click()
    expect(seller.get_by_role("link", name="Log in", exact=True)).to_be_visible()
    log_in(seller, web, email)
    seller.get_by_role("link", name="Sell", exact=True).click()
    seller.get_by_label("Title").fill(title)
    seller.get_by_label("Description").fill("Brass desk lamp, works.")
    seller.get_by_label("Price").fill("25.00")
    seller.get_by_role("button", name="Create listing").click()
    expect(seller).to_have_url(re.compile(r"/listings/[0-9a-f-]{36}$"))
    expect(seller.get_by_role("heading", name=title, level=1)).to_be_visible()
    listing_url = seller.url

    buyer = pages.new()
    register(buyer, web, "buyer")
    buyer.goto(web.url("/"))
    buyer.get_by_role("searchbox", name="Search").fill(title.split()[1])
    buyer.get_by_role("button", name="Search").click()
    expect(buyer).to_have_url(re.compile(r"[?&]q="))
    buyer.get_by_role("link", name=title).click()
    expect(buyer).to_have_url(listing_url)
    expect(buyer.get_by_role("heading", name=title, level=1)).to_be_visible()

    # Live chat: both sides hold the conversation open; each sees the other's message unreloaded.
    buyer.get_by_role("button", name="Message the seller").click()
    expect(buyer.get_by_test_id("live-status")).to_have_text("Live")
    seller.get_by_role("link", name="Messages").click()
    seller.get_by_role("link", name=re.compile(re.escape(title))).click()
    expect(seller.get_by_test_id("live-status")).to_have_text("Live")
    buyer.get_by_label("Message").fill("Is it still available?")
    buyer.get_by_role("button", name="Send").click()
    expect(seller.get_by_test_id("messages")).to_contain_text("Is it still available?")
    seller.get_by_label("Message").fill("Yes, it is!")
    seller.get_by_role("button", name="Send").click()
    expect(buyer.get_by_test_id("messages")).to_contain_text("Yes, it is!")

    # A decline is explained and charges nothing; the next attempt (a new key) pays, once, though
    # the button is double-clicked.
    buyer.goto(listing_url)
    before = payment_posts(web, listing_url)  # "Message the seller" posted here too
    pay_with(buyer, "4000000000000002")
    expect(buyer.get_by_role("alert").filter(has_text="declined")).to_be_visible()
    pay_with(buyer, "4242424242424242", double=True)
    expect(buyer.get_by_role("status").filter(has_text="Payment complete")).to_be_visible()
    # Two attempts reached the app's server (the decline and one payment), not three.
    assert payment_posts(web, listing_url) - before == 2

    def sold() -> bool:
        buyer.goto(listing_url)
        return buyer.get_by_test_id("sold").count() == 1

    poll(sold, timeout=30, interval=1, what="listing shown as sold")
    buyer.get_by_role("link", name="My purchases").click()
    expect(buyer.get_by_role("heading", name="My purchases")).to_be_visible()
    assert buyer.get_by_role("link", name=title).count() == 1  # one succeeded payment
    seller.goto(listing_url)
    expect(seller.get_by_test_id("sold")).to_be_visible()
    assert pages.console_errors == []


def test_owner_edits_and_deletes_a_listing(web: WebApp, pages: Pages) -> None:
    title = f"Desk {uuid.uuid4().hex[:10]}"
    page = pages.new()
    register(page, web, "owner")
    page.get_by_role("link", name="Sell", exact=True).click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Price").fill("abc")
    page.get_by_role("button", name="Create listing").click()
    expect(page.get_by_role("alert").filter(has_text="price like 12.50")).to_be_visible()
    page.get_by_label("Price").fill("80")
    page.get_by_role("button", name="Create listing").click()
    expect(page).to_have_url(re.compile(r"/listings/[0-9a-f-]{36}$"))
    listing_url = page.url
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Price").fill("75.50")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(listing_url)
    expect(page.get_by_text("€75.50")).to_be_visible()
    page.get_by_role("button", name="Delete listing").click()
    expect(page).to_have_url(re.compile(r"/\?deleted=1$"))
    page.goto(listing_url)
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert [e for e in pages.console_errors if "404" not in e] == []


def test_tokens_stay_in_httponly_cookies_and_refresh_keeps_the_user_in(web: WebApp, pages: Pages) -> None:
    page = pages.new()
    register(page, web, "reload")
    cookies = {c["name"]: c for c in page.context.cookies()}
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        assert (cookies[name]["httpOnly"], cookies[name]["secure"], cookies[name]["sameSite"]) == (
            True,
            True,
            "Lax",
        )
    assert "mp_" not in page.evaluate("document.cookie")
    old_refresh = cookies[REFRESH_COOKIE]["value"]
    # The access cookie expires first; a reload refreshes the pair and the user stays signed in.
    page.context.clear_cookies(name=ACCESS_COOKIE)
    page.reload()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    renewed = {c["name"]: c["value"] for c in page.context.cookies()}
    assert ACCESS_COOKIE in renewed
    assert renewed[REFRESH_COOKIE] != old_refresh
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()
    assert not {ACCESS_COOKIE, REFRESH_COOKIE} & {c["name"] for c in page.context.cookies()}
    assert pages.console_errors == []


def test_browse_and_listing_pages_work_without_javascript(web: WebApp, pages: Pages) -> None:
    with web.platform.client() as client:
        owner = new_account(web.platform, client, "nojs")
        title = f"Chair {uuid.uuid4().hex[:10]}"
        listing = create_listing(web.platform, client, owner["token"], title=title, price_minor=4200)
    page = pages.new(javascript=False)
    page.goto(web.url("/"))
    page.get_by_role("searchbox", name="Search").fill(title.split()[1])
    page.get_by_label("Max price").fill("50")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"q=.+&max=50"))
    page.get_by_role("link", name=title).click()
    expect(page).to_have_url(web.url(f"/listings/{listing['id']}"))
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    expect(page.get_by_text("€42.00")).to_be_visible()
    assert pages.console_errors == []


def test_cross_site_writes_are_refused(web: WebApp) -> None:
    for headers in ({"Origin": "https://evil.example"}, {}):
        r = httpx.post(
            web.url("/login"), headers=headers, data={"email": "a@b.cd"}, timeout=10, verify=web.verify
        )
        assert r.status_code == 403, (headers, r.status_code)
        assert r.json()["error"]["code"] == "csrf"


def test_pages_carry_a_nonce_csp_without_unsafe_eval_and_the_request_id(web: WebApp) -> None:
    r = httpx.get(web.url("/"), headers={"X-Request-ID": "web-e2e-1"}, timeout=15, verify=web.verify)
    csp = r.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    assert "unsafe-eval" not in csp
    assert "unsafe-inline" not in csp
    assert f'nonce="{nonce.group(1)}"' in r.text
    assert r.headers["x-request-id"] == "web-e2e-1"
    assert '"request_id":"web-e2e-1"' in web.log.read_text()


def test_the_apps_api_calls_carry_the_browsers_address(web: WebApp) -> None:
    """Rate and login limits stay per browser: the app's server passes on the address the gateway saw,
    so the gateway's internal listener does not count every user of the app as one client."""
    rid = f"web-e2e-xff-{uuid.uuid4().hex[:8]}"
    if routed_web_app(web.platform) is not None:
        source = "127.0.0.77"  # browser -> gateway (X-Real-IP) -> app -> internal listener
        transport = httpx.HTTPTransport(local_address=source, verify=web.verify)
        with httpx.Client(transport=transport, timeout=15) as client:
            r = client.get(web.url("/"), headers={"X-Request-ID": rid})
    else:
        source = "203.0.113.9"  # the app opened directly: what the gateway would have sent it
        r = httpx.get(web.url("/"), headers={"X-Request-ID": rid, "X-Real-IP": source}, timeout=15)
    assert r.status_code == 200
    access_log = web.platform.log("gateway-access")
    seen = poll(
        lambda: [
            line
            for line in map(json.loads, access_log.read_text().splitlines())
            if line["request_id"] == rid and line["uri"].startswith("/api/")
        ],
        timeout=10,
        what="the browse page's API call in the gateway's access log",
    )
    assert {line["remote_addr"] for line in seen} == {source}


def test_keyboard_alone_reaches_the_search(web: WebApp, pages: Pages) -> None:
    page = pages.new()
    page.goto(web.url("/"))
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    search = page.get_by_role("searchbox", name="Search")
    for _ in range(10):
        page.keyboard.press("Tab")
        if search.evaluate("el => el === document.activeElement"):
            break
    expect(search).to_be_focused()
    page.keyboard.type("lamp")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=lamp"))
    assert pages.console_errors == []
