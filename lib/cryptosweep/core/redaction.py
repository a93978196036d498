"""Keeping secrets that live in URLs (a webhook's token, a password) out of every message and
file: the one redaction every module that prints a URL uses.

A URL is split without trusting a URL parser: a password may hold ``#``, ``?`` or ``/`` (which
``urllib.parse`` takes for the start of a fragment, query or path, so that it reports a wrong
host and no password), or the URL may not parse at all. Everything between the scheme and the
host (the last ``@`` of the URL ends the credentials) is a secret, and so are the path, query
and fragment unless a caller keeps the path; what can be parsed adds its pieces.
"""

from __future__ import annotations

import re
import urllib.parse

#: What replaces a secret in a message.
MASK = "<redacted>"
#: A URL inside a message: a scheme, ``://`` and everything up to a blank or a quote.
URL_PATTERN = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*)://([^\s'\"<>]*)")
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*):(?://)?")
_UNPRINTABLE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
#: A piece of a path or query shorter than this is a word ("services", "hooks"), not a token.
_TOKEN_LENGTH = 6


def split_url(url: str) -> tuple[str, str, str, str]:
    """``(scheme, credentials, host_and_port, rest)`` of ``url``, never raising: the
    credentials are everything between the scheme and the last ``@``, the host and port run
    to the next ``/``, ``?`` or ``#``, the rest is the path, query and fragment."""
    match = _SCHEME.match(url)
    scheme = match.group(1) if match and "://" in url[: match.end()] else ""
    after = url[match.end():] if scheme and match else url
    credentials, at, authority = after.rpartition("@")
    if not at:
        credentials, authority = "", after
    cut = min((i for i in (authority.find(c) for c in "/?#") if i >= 0), default=len(authority))
    return scheme, credentials, authority[:cut], authority[cut:]


def redact_url(url: str, *, keep_path: bool = False) -> str:
    """``url`` as it may be shown: its scheme, host and port (and, with ``keep_path``, its
    path), never its user, password, query or fragment; unprintable characters become ``?``."""
    scheme, _, host, rest = split_url(str(url))
    path = re.split(r"[?#]", rest, maxsplit=1)[0] if keep_path else ""
    shown = f"{scheme}://{host}{path}" if scheme else f"{host}{path}"
    return _UNPRINTABLE.sub("?", shown) if shown.strip() else "<url>"


def secret_pieces(url: str) -> set[str]:
    """Every string of ``url`` a message must not show: the URL, its credentials and each part
    of them, its path, query and fragment and their longer pieces, as written, percent-decoded,
    cut at blanks and control characters, and escaped (``\\x01``) as ``repr`` quotes them."""
    scheme, credentials, _, rest = split_url(url)
    pieces = {url, credentials, *credentials.split(":"), rest}
    if credentials:  # a parser may cut them at a '#', '?' or '/' and quote a part as a port
        pieces.add(f"{credentials}@")
        pieces.update(re.split(r"[:#?/@]", credentials))
    pieces.update(re.split(r"[?#]", rest))
    pieces.update(seg for seg in re.split(r"[/?#&=]", rest) if len(seg) >= _TOKEN_LENGTH)
    try:  # what a parser makes of it, which a library's message may quote
        parts = urllib.parse.urlsplit(url)
        pieces.update({parts.netloc.rpartition("@")[0], parts.path, parts.query, parts.fragment,
                       f"{parts.path}?{parts.query}"})
        pieces.update(value for _, value in urllib.parse.parse_qsl(parts.query)
                      if len(value) >= _TOKEN_LENGTH)
        pieces.update(part for part in (parts.username, parts.password) if part)
        if credentials:
            pieces.update({parts.netloc, *parts.netloc.split(":")})
    except ValueError:
        pass
    pieces |= {urllib.parse.unquote(piece) for piece in pieces}
    pieces |= {part for piece in pieces for part in _UNPRINTABLE.split(piece)
               if len(part) >= _TOKEN_LENGTH}
    pieces |= {piece.encode("unicode_escape").decode("ascii") for piece in pieces}
    pieces |= {repr(piece)[1:-1] for piece in pieces}
    return {piece for piece in pieces if len(piece) > 1 and piece not in (scheme, "//")}


def redact(text: str, *secrets: str, keep_path: bool = False) -> str:
    """``text`` without any of ``secrets`` (URLs: every piece of :func:`secret_pieces`), and
    every other URL in it shown by :func:`redact_url`."""
    pieces: set[str] = set()
    for secret in secrets:
        if secret:
            pieces |= secret_pieces(secret)
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, MASK)
    return URL_PATTERN.sub(lambda m: redact_url(m.group(0), keep_path=keep_path), text)
