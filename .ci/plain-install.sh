#!/usr/bin/env bash
# The package as a new user installs it: `pip install .` without extras, in a fresh virtual
# environment (torch first, the CPU build, as the README says), then every front end starts:
# `specedit --help`, `models list`, `serve` answering `initialize` over stdio, `api --help`,
# and `specedit api` refusing with one line that names the [api] extra it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
venv=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$venv")"' EXIT
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install -q torch==2.13.0
"$venv/bin/python" -m pip install -q .
cd "$(dirname "$venv")"  # away from the checkout: the installed package, not the sources
bin=$venv/bin
"$bin/specedit" --help >/dev/null
"$bin/specedit" models list >/dev/null
"$bin/specedit" api --help >/dev/null
if "$bin/specedit" api --model nothing-here 2>err.txt; then
  echo "plain-install: specedit api ran without its [api] extra" >&2; exit 1
fi
grep -q "speculative-edits\[api\]" err.txt || { cat err.txt >&2; exit 1; }
"$bin/python" - "$bin/specedit" <<'PY'
import json, subprocess, sys
proc = subprocess.Popen([sys.argv[1], "serve", "--stdio"], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE)
def send(message):
    body = json.dumps(message).encode()
    proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    proc.stdin.flush()
def receive():
    length = None
    while (line := proc.stdout.readline().strip()):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return json.loads(proc.stdout.read(length))
send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
      "params": {"processId": None, "rootUri": None, "capabilities": {}}})
reply = receive()
assert "capabilities" in reply.get("result", {}), reply
send({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
receive()
send({"jsonrpc": "2.0", "method": "exit"})
assert proc.wait(30) == 0
print("plain-install: specedit serve answered initialize")
PY
echo "plain-install: every front end starts without extras"
