"""Everything in the server that replaces or reaches into pygls (2.1.1), and why.

Nothing outside this package touches a private attribute of pygls, and nothing here imports
the rest of the server (tests/lsp_server/test_layout.py checks both), so each override can
go on its own once pygls fixes what it works around. Each entry says what pygls does, what
goes wrong, what we do instead, and where the upstream report is: UPSTREAM.md, one section
per defect with a reproduction against plain pygls 2.1.1 (put the issue URL there and here
once filed). tests/lsp_server/test_pygls_overrides.py tests most entries in-process, and
each of its tests fails with its override removed.

1. Reading the stream: transport.py + framing.py replace pygls.io_ (run_async/run) and
   JsonRPCServer.start_io/start_tcp.
   pygls: reads header lines and recognises only `^Content-Length: (\\d+)\\r\\n$`; every
   other line is skipped, and `read(n)` allocates whatever length is announced.
   Wrong: a lowercase name, LF-only line ends, no space after the colon or a short length
   makes the server deaf for good; a huge length allocates that many bytes and waits.
   Ours: FrameParser bounds headers and bodies, accepts any case and LF, answers a framing
   error with -32700 (id null) and resynchronises at the next Content-Length; a daemon
   thread reads stdin, so nothing waits for it at the end.
   Report: UPSTREAM.md#framing

2. Checking every message before pygls sees it: SpecEditProtocol.handle_frame/handle_payload
   (instead of json.loads(body, object_hook=structure_message)).
   pygls: structures messages inside json.loads' object hook, where the id is unknown.
   Wrong: a body that is not JSON, params that do not fit (or are omitted), a missing
   "jsonrpc" or an array get no response, only a window/showMessage; a response to our own
   request that does not fit its type leaves the awaiting code hanging.
   Ours: -32700 / -32600 / -32602 with the request's id where it can be read; an omitted
   params is null; an unfit response fails its future (`_bad_structure`, which pops
   `_request_futures`).
   Report: UPSTREAM.md#unanswered-messages

3. Before `initialize`: SpecEditProtocol.handle_payload (`initialize_received`).
   pygls: runs any handler at any time.
   Wrong: requests get -32603 (no workspace yet) instead of LSP's -32002; notifications
   run and fail with a showMessage instead of being dropped.
   Ours: -32002 for every request but `initialize`; notifications but `exit` dropped.
   Report: UPSTREAM.md#before-initialize

4. After `shutdown`: SpecEditProtocol.handle_payload (reads `_shutdown`).
   pygls: drops every message after shutdown but `exit`.
   Wrong: requests are never answered (LSP: InvalidRequest).
   Ours: -32600 "… after shutdown".
   Report: UPSTREAM.md#after-shutdown

5. `shutdown`: SpecEditProtocol.lsp_shutdown (iterates `_request_futures`).
   pygls: cancels in-flight futures while iterating the table that their callbacks pop.
   Wrong: "dictionary changed size during iteration" while a command runs: -32603, and
   the server is not shut down.
   Ours: iterates a copy.
   Report: UPSTREAM.md#shutdown-iteration

6. `exit`: SpecEditProtocol.lsp_exit, transport.serve, transport.exit_code (reads
   `_shutdown` through SpecEditProtocol.shut_down).
   pygls: raises SystemExit from the handler (or from a done callback); start_io swallows
   it and waits for its thread pool.
   Wrong: exit code 0 without shutdown (LSP: 1); the process lives on while a handler
   runs.
   Ours: `exit` sets flags; the loop ends, cancels what runs, and the command line exits
   with 0 after shutdown, else 1.
   Report: UPSTREAM.md#exit

7. A cancelled generator step: SpecEditProtocol._run_generator.
   pygls: `future.result()` on the step that finished, under `except Exception`.
   Wrong: for a cancelled step CancelledError escapes from a loop callback and the
   executeCommand request is never answered.
   Ours: a cancelled step closes the generator and cancels the request (-32800).
   Report: UPSTREAM.md#cancelled-step

8. `$/cancelRequest`: SpecEditProtocol._handle_cancel_notification + on_cancel_request.
   pygls: cancels the request's result future; an executeCommand's coroutine is another
   task, filed under a random id.
   Wrong: the client is told "cancelled" while the command runs on.
   Ours: after pygls' cancel, a hook the server sets stops the rewrite of that request.
   Report: UPSTREAM.md#cancel-command

9. The in-flight table: SpecEditProtocol._execute_handler.
   pygls: files every async/threaded handler's future in `_request_futures`; only requests
   remove theirs.
   Wrong: one done future per async notification and per command step, for good.
   Ours: a done callback removes the entry when it is still that future.
   Report: UPSTREAM.md#request-futures

10. Writing: SpecEditProtocol._send_data (and send_error).
    pygls: reports a failed write with window/showMessage.
    Wrong: that is another write to the broken output: ~200 recursive attempts per message.
    Ours: log once, mark the output closed, drop every later write.
    Report: UPSTREAM.md#failed-write

11. Documents: document_sync.py (LspTextDocument, LspWorkspace).
    pygls: TextDocument splits lines with str.splitlines.
    Wrong: \\v, \\f, \\x1c-\\x1e, \\x85, U+2028/2029 end lines for pygls but not for LSP,
    so incremental changes after them land on the wrong line.
    Ours: LSP's line breaks only, columns in the negotiated encoding, positions clamped as
    editors clamp them.
    Report: UPSTREAM.md#splitlines

12. The workspace's class: SpecEditProtocol._workspace (a property over pygls' attribute),
    which assigns `workspace.__class__ = LspWorkspace`.
    pygls: lsp_initialize constructs Workspace(...) itself; there is no factory to pass.
    Wrong: no supported way to give the workspace LSP-correct documents (entry 11).
    Ours: the same object, its class swapped when pygls assigns it (same state, our
    document factory).
    Report: UPSTREAM.md#splitlines (its "Related" paragraph)

13. Progress tokens: EndingProgress replaces the protocol's `progress`.
    pygls: Progress.end leaves the token's Future in `Progress.tokens`.
    Wrong: one Future per rewrite kept for good; a token cannot be created again.
    Ours: `end` also forgets the token.
    Report: UPSTREAM.md#progress-tokens
"""
