"""What a connection may hold on `specedit api`: deadlines for a request's head and body, and
a cap on connections, on the shared server (tests/engine/api/conftest.py sets them short).

The deadlines are the server's to keep: each test waits for the server to act (a closed
socket, a 408), with a socket timeout far past the deadline as the hang guard, never
asserting how long it took.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlparse

import httpx

from tests.engine.api.conftest import API_KEY, BODY_TIMEOUT, MAX_CONNECTIONS, ApiServer

GUARD = 120  # seconds before a socket read gives up: a hang, not a slow machine


def connect(api_server: ApiServer) -> socket.socket:
    url = urlparse(api_server.base_url)
    return socket.create_connection((url.hostname, url.port), timeout=GUARD)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One response (status, body) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), body


def test_a_request_head_that_stalls_is_closed(api_server: ApiServer) -> None:
    silent = connect(api_server)  # opens, sends nothing
    partial = connect(api_server)  # half a request head
    partial.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Ty")
    kept = connect(api_server)  # a whole request, then half of the next one on the same socket
    kept.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_response(kept)[0] == 200
    kept.sendall(b"GET /hea")
    for sock in (silent, partial, kept):
        with sock:
            assert read_until_closed(sock) == b""  # closed without an answer
    assert api_server.health()["status"] == "ok"


def test_a_body_that_stalls_gets_408(api_server: ApiServer) -> None:
    with connect(api_server) as sock:
        body = json.dumps({"model": api_server.model, "messages": []}).encode()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
                     b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                     % (len(body) + 10) + body)  # ten bytes short
        answer = read_until_closed(sock)
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    error = json.loads(payload)["error"]
    assert error["code"] == "request_timeout" and f"{BODY_TIMEOUT:g} s" in error["message"]


def test_connections_past_the_limit_get_503(api_server: ApiServer) -> None:
    held = [connect(api_server) for _ in range(MAX_CONNECTIONS)]
    try:
        over = httpx.get(f"{api_server.base_url}/health", timeout=GUARD)
        assert over.status_code == 503
        assert over.json()["error"]["code"] == "too_many_connections"
        assert over.headers["connection"] == "close" and over.headers["retry-after"]
    finally:
        for sock in held:
            sock.close()
    # Once the held sockets are gone (the server notices at once), requests are served again.
    deadline = time.monotonic() + GUARD
    while httpx.get(f"{api_server.base_url}/health", timeout=GUARD).status_code != 200:
        assert time.monotonic() < deadline, "the closed connections were never released"
        time.sleep(0.05)
