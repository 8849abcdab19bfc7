"""Refuse every network connection except loopback, and record the attempts.

Installed in the test process by tests/conftest.py, and in ComfyUI processes started by the tests through
``sitecustomize.py`` beside this file (put this folder first on PYTHONPATH). A refused attempt raises
``NetworkBlocked`` and is printed with the marker below, so a test can also find attempts that code caught.
"""

from __future__ import annotations

import socket
import sys

MARKER = "REMASKABLE-NETGUARD blocked"
ATTEMPTS: list[str] = []
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}


class NetworkBlocked(OSError):
    pass


def _is_loopback(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host)
    return host in _LOOPBACK_NAMES or host.startswith("127.")


def _refuse(what: str):
    ATTEMPTS.append(what)
    print(f"{MARKER}: {what}", file=sys.stderr, flush=True)
    raise NetworkBlocked(f"network access is blocked in tests: {what}")


def install() -> None:
    if getattr(socket, "_remaskable_guarded", False):
        return
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def checked(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            _refuse(f"connect to {address!r}")

    def connect(sock, address):
        checked(sock, address)
        return original_connect(sock, address)

    def connect_ex(sock, address):
        checked(sock, address)
        return original_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host if host is not None else ""):
            _refuse(f"DNS lookup of {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo
    socket._remaskable_guarded = True
