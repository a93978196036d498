"""One redaction for every URL a message or file shows: a password holding '#', '?' or '/',
a control character in the path, a token in the path never appear."""

from __future__ import annotations

import pytest

from cryptosweep.core.redaction import redact, redact_url, split_url

TOKEN = "xoxT0KEN-s3cr3t-4f8e2a"

URLS = {
    "a '#' in the password": (f"https://bob:hun#ter2@hooks.example.com/services/{TOKEN}",
                              ["hun#ter2", "hun", "ter2", "bob:"]),
    "a '?' in the password": (f"https://bob:hun?ter2@hooks.example.com/services/{TOKEN}",
                              ["hun?ter2", "hun", "ter2", "bob:"]),
    "a '/' in the password": (f"https://bob:hun/ter2@hooks.example.com/services/{TOKEN}",
                              ["hun/ter2", "hun", "ter2", "bob:"]),
    "a control character in the path": (f"https://hooks.example.com/services/{TOKEN}\x01x",
                                        [TOKEN, "\\x01x"]),
    "a token in the path": (f"https://hooks.example.com/services/{TOKEN}", [TOKEN]),
    "a token in the query": (f"https://hooks.example.com/hook?token={TOKEN}", [TOKEN]),
}


@pytest.mark.parametrize(("url", "secrets"), list(URLS.values()), ids=list(URLS))
def test_no_piece_of_a_secret_url_survives_in_a_message(url, secrets):
    from cryptosweep.nightly import notifications

    shown = redact_url(url)
    assert shown == "https://hooks.example.com", shown
    messages = [f"failed to reach {url}", f"InvalidURL: {url!r}",
                f"URL can't contain control characters. {url.split('.com', 1)[1]!r}"]
    lines = notifications.notify(notifications.build_summary(None, 2, "x"), url, None, timeout=2)
    for text in [*(redact(message, url) for message in messages), *lines]:
        for secret in secrets:
            assert secret not in text, (secret, text)


def test_split_url_takes_everything_before_the_last_at_for_credentials():
    assert split_url("https://u:p#a/s?s@h.example:8443/x?y#z") == (
        "https", "u:p#a/s?s", "h.example:8443", "/x?y#z")
    assert split_url("hooks.example.com/x") == ("", "", "hooks.example.com", "/x")
    assert redact_url("https://u:p@h.example:8443/a/b?key=1#f", keep_path=True) == (
        "https://h.example:8443/a/b")


def test_the_market_data_messages_use_the_same_redaction():
    from cryptosweep.marketdata import exchange

    url = f"https://bob:hun#ter2@api.example.com/v3?key={TOKEN}"
    assert exchange.redact_url(url) == "https://api.example.com/v3"
    text = exchange._redact(f"GET {url} failed", exchange._url_secrets(url))
    assert "hun" not in text and "ter2" not in text and TOKEN not in text
