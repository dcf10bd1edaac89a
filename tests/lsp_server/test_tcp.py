"""`--tcp` for debugging (loopback only), and a handshake that does not wait for the model."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

from lsp_server import cli
from lsp_server.actions import COMMAND
from tests.helpers.raw_lsp import FrameReader, frame


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = FrameReader(sock.recv)

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(frame({"jsonrpc": "2.0", **message}))

    def response(self, msg_id: int) -> dict[str, Any]:
        while True:
            message = self.reader.next()
            assert message is not None, "the server closed the connection"
            if message.get("id") == msg_id and "method" not in message:
                return message


def test_tcp_server_answers_the_handshake_before_any_model_loads(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "lsp_server", "--tcp", "--port", str(port)])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                break
            except OSError:
                assert time.monotonic() < deadline, "the TCP server did not start"
                time.sleep(0.1)
        conn = Connection(sock)
        # A model that does not exist: the handshake must not care (it loads after it; the
        # background load failing is test_server's bad-model test).
        conn.send({"id": 1, "method": "initialize", "params": {
            "processId": None, "rootUri": None, "capabilities": {},
            "initializationOptions": {"model": str(tmp_path / "no-such-model")}}})
        result = conn.response(1)["result"]
        assert COMMAND in result["capabilities"]["executeCommandProvider"]["commands"]
        assert result["capabilities"]["codeActionProvider"]["resolveProvider"] is True
        conn.send({"method": "initialized", "params": {}})
        conn.send({"id": 2, "method": "shutdown"})
        assert conn.response(2)["result"] is None
        conn.send({"method": "exit"})
        sock.close()
    finally:
        server.terminate()
        server.wait(30)


def test_tcp_refuses_a_non_loopback_host_in_one_line():
    """No authentication on the socket: listening beyond this machine would hand any
    connecting host the editor's documents and edits."""
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_server", "--tcp", "--host", "0.0.0.0", "--port",
         str(free_port())], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert "loopback" in line and "'0.0.0.0'" in line


def test_only_loopback_hosts_may_listen():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert cli.non_loopback_refusal(host) is None, host
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com", ""):
        assert cli.non_loopback_refusal(host) is not None, host
