"""The rewrite layer: a request checked (request.py) and worded (prompt.py), decoded in
process (rewrite.py, completion.py, with one set-up in prepare.py) or by a remote endpoint
(remote.py over endpoint.py), and the engine thread the servers share (worker.py)."""
