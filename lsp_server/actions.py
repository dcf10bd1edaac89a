"""The code actions offered on a selection, shaped by what the client can do."""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types

from .edits import selected_lines
from .wire import RewriteRequest

COMMAND = "specedit.rewriteSelection"
REWRITE_TITLE = "Rewrite selection with instruction…"
KIND = types.CodeActionKind.RefactorRewrite


def _wanted(only: Sequence[str] | None) -> bool:
    """Whether a `context.only` filter lets refactor.rewrite actions through."""
    if not only:
        return True
    return any(k and (k == KIND or KIND.startswith(f"{k}.")) for k in only)


def can_resolve_edit(caps: types.ClientCapabilities) -> bool:
    action = caps.text_document.code_action if caps.text_document else None
    support = action.resolve_support if action else None
    return bool(support and "edit" in support.properties)


def has_literal_support(caps: types.ClientCapabilities) -> bool:
    action = caps.text_document.code_action if caps.text_document else None
    return bool(action and action.code_action_literal_support)


def code_actions(
    uri: str,
    selection: types.Range,
    version: int | None,
    presets: Sequence[str],
    caps: types.ClientCapabilities,
    only: Sequence[str] | None = None,
) -> list[types.CodeAction | types.Command]:
    """The instruction action, then one per preset; nothing for an empty selection.

    Presets carry their request in `data` and get their edit in `codeAction/resolve` when
    the client can resolve edits: the rewrite runs only for the action the user picks. Other
    clients (eglot) get them as commands, which rewrite and apply through workspace/applyEdit.
    """
    if selected_lines(selection) is None or not _wanted(only):
        return []
    ask = RewriteRequest(uri, selection)
    commands = [types.Command(title=REWRITE_TITLE, command=COMMAND, arguments=[ask.to_wire()])]
    commands += [
        types.Command(title=preset, command=COMMAND,
                      arguments=[RewriteRequest(uri, selection, preset, version).to_wire()])
        for preset in presets
    ]
    if not has_literal_support(caps):
        return list(commands)
    actions: list[types.CodeAction | types.Command] = [
        types.CodeAction(title=REWRITE_TITLE, kind=KIND, command=commands[0])]
    resolve = can_resolve_edit(caps)
    for preset, command in zip(presets, commands[1:], strict=True):
        if resolve:
            data = RewriteRequest(uri, selection, preset, version).to_wire()
            actions.append(types.CodeAction(title=preset, kind=KIND, data=data))
        else:
            actions.append(types.CodeAction(title=preset, kind=KIND, command=command))
    return actions
