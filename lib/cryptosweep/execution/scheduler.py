"""Checking a ``--scheduler-address`` before dask is let near it.

dask's client trusts what answers at the address: a plain HTTP server there made it wait for
over ten minutes without a word, and a server that answered with other bytes made it read them
as a frame length and try to allocate exabytes. So the address is checked first, with our own
socket and short timeouts: it must be ``tcp://HOST:PORT`` (or ``HOST:PORT``; ``tls://`` is
passed to dask as it is, whose TLS handshake is bounded by its own timeout), something must
accept a connection there, and it must speak first with dask's handshake (a dask server writes
its handshake as soon as it accepts a connection: an 8-byte length, then a small msgpack map
with ``python`` and ``pickle-protocol``). Then dask's own connection asks it who it is, and it
must say ``Scheduler``. Each failure is one :class:`~cryptosweep.core.errors.UserError` (exit 2).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import struct
from typing import Any

from cryptosweep.core.errors import UserError
from cryptosweep.core.redaction import redact, redact_url
from cryptosweep.core.settings import NO_CREDENTIALS_IN_ADDRESS

#: Seconds to connect, to wait for the handshake, and to wait for the identity reply.
PROBE_TIMEOUT_S = 5.0
#: A dask handshake is about a hundred bytes; a larger first frame is not one.
_MAX_HANDSHAKE_BYTES = 1 << 16
SCHEMES = ("tcp", "tls")


def check_scheduler_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """The address as dask reads it (``tcp://HOST:PORT``), once a dask scheduler answered
    there; else a :class:`UserError` saying what is there instead."""
    scheme, host, port = parse_address(address)
    normalised = f"{scheme}://{_bracketed(host)}:{port}"
    if scheme == "tcp":
        _probe_handshake(address, host, port, timeout)
        kind = _identity(normalised, timeout)
        if kind != "Scheduler":
            raise UserError(f"--scheduler-address {address}: a dask {kind or 'server'} "
                            "answers there, not a scheduler")
    return normalised


def parse_address(address: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``[tcp://|tls://]HOST:PORT``; anything else is a
    :class:`UserError`."""
    text = address.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    if "@" in rest:  # never echoed: the password would be in every log that shows the error
        raise UserError(f"--scheduler-address {redact_url(f'{scheme}://{rest}')}: "
                        f"{NO_CREDENTIALS_IN_ADDRESS}")
    host, colon, port_text = rest.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    valid = (scheme in SCHEMES and colon and host and port_text.isdigit()
             and 0 < int(port_text) < 65536 and "/" not in host and " " not in host)
    if not valid:
        raise UserError(f"--scheduler-address {redact(address)!r}: expected tcp://HOST:PORT "
                        "(the address `dask scheduler` prints; tls:// also works)")
    return scheme, host, int(port_text)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _probe_handshake(address: str, host: str, port: int, timeout: float) -> None:
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise UserError(f"--scheduler-address: cannot reach {address}: "
                        f"{exc.strerror or exc}") from None
    with connection:
        try:
            header = _read_exactly(connection, 8)
            (size,) = struct.unpack("<Q", header)
            if not 0 < size <= _MAX_HANDSHAKE_BYTES:
                raise _NotDaskError(header)
            body = _read_exactly(connection, size)
        except TimeoutError:
            raise UserError(
                f"--scheduler-address {address}: something accepts connections there, but no "
                f"dask scheduler spoke within {timeout:g} s (is it the address `dask "
                "scheduler` printed?)") from None
        except _NotDaskError as exc:
            raise UserError(
                f"--scheduler-address {address}: not a dask scheduler (it answered "
                f"{bytes(exc.args[0][:24])!r})") from None
        except OSError as exc:
            raise UserError(f"--scheduler-address {address}: the connection failed: "
                            f"{exc.strerror or exc}") from None
    if b"pickle-protocol" not in body or b"python" not in body:
        raise UserError(f"--scheduler-address {address}: not a dask scheduler (its first "
                        "message is not dask's handshake)")


class _NotDaskError(Exception):
    """The first bytes are not the length of a dask handshake."""


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    chunks, missing = [], size
    while missing:
        chunk = connection.recv(min(missing, 1 << 16))
        if not chunk:
            raise _NotDaskError(b"".join(chunks) or b"(connection closed)")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _identity(address: str, timeout: float) -> str | None:
    """What the dask server at ``address`` says it is (``Scheduler``, ``Worker``, ...), asked
    through dask's own connection in a thread of its own (a notebook's thread already runs an
    event loop)."""

    async def ask() -> Any:
        from distributed.comm import connect

        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            await comm.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            reply = pool.submit(asyncio.run, ask()).result(timeout=3 * timeout)
        except Exception as exc:
            raise UserError(f"--scheduler-address {address}: no answer to dask's identity "
                            f"request ({type(exc).__name__}: {exc})") from None
    return reply.get("type") if isinstance(reply, dict) else None
