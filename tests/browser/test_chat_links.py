"""Chat lines: web addresses become safe links; everything else stays text."""

from __future__ import annotations

from playwright.async_api import expect

from tests.support.browseruser import connect_call

LINE = (
    "See https://example.com/a?b=1&c=2. Or (https://lan.test/wiki/Foo_(bar)), "
    "not javascript:alert(1), not data:text/html,<script>window.__owned=1</script>, "
    'not <a href="https://evil.test/">markup</a>, not ftp://files.test/x, and www.example.org/x.'
)


async def test_chat_links_are_clickable_and_nothing_else_is(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)
    await bob.test_id("toggle-chat").click()
    await alice.test_id("toggle-chat").click()
    await alice.test_id("chat-input").fill(LINE)
    await alice.test_id("chat-input").press("Enter")

    for user, who in ((bob, "Alice: "), (alice, "You: ")):
        message = user.page.get_by_test_id("chat-message").last
        await expect(message).to_have_text(who + LINE)  # every character still there, as text
        links = await message.evaluate(
            "(li) => [...li.querySelectorAll('a')].map((a) => [a.getAttribute('href'), a.textContent,"
            " a.target, a.rel])"
        )
        # The address inside the markup is an https address like any other, shown as typed.
        assert links == [
            [
                "https://example.com/a?b=1&c=2",
                "https://example.com/a?b=1&c=2",
                "_blank",
                "noopener noreferrer",
            ],
            [
                "https://lan.test/wiki/Foo_(bar)",
                "https://lan.test/wiki/Foo_(bar)",
                "_blank",
                "noopener noreferrer",
            ],
            ["https://evil.test/", "https://evil.test/", "_blank", "noopener noreferrer"],
            # An address as people write it, with no scheme (issue 19, 16): opened as https.
            ["https://www.example.org/x", "www.example.org/x", "_blank", "noopener noreferrer"],
        ]
        assert await message.evaluate("(li) => li.querySelectorAll('script, b, img').length") == 0
    assert await bob.js("window.__owned") is None
