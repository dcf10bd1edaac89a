"""The server's plain parts without a server: settings, code actions, progress text, CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import client_capabilities

import engine
from engine import contract
from lsp_server import cli
from lsp_server.actions import COMMAND, REWRITE_TITLE, code_actions
from lsp_server.messages import Refused
from lsp_server.progress import describe_event
from lsp_server.settings import METHODS, Settings, parse_settings, section_of
from lsp_server.wire import RewriteRequest
from lsp_server.worker import Generated, Loading, Queued

SELECTION = types.Range(start=types.Position(line=1, character=0),
                        end=types.Position(line=3, character=0))


# -- settings -------------------------------------------------------------------------------

def test_settings_defaults_match_the_extension_contract():
    s = Settings()
    assert (s.model, s.device, s.dtype, s.method) == (
        contract.BUILTIN_DEFAULT_MODEL, "auto", "auto", "speculative")
    assert s.presets == ("Add docstrings", "Add type hints", "Add comments explaining the code")
    assert set(METHODS) <= set(engine.METHODS)


def test_settings_section_is_found_either_way():
    assert section_of({"specedit": {"model": "m"}}) == {"model": "m"}
    assert section_of({"model": "m"}) == {"model": "m"}
    assert section_of({"python": {"x": 1}}) is None  # someone else's settings: no change
    assert section_of(None) is None


def test_settings_parse_and_report_bad_values():
    previous = Settings(model="good", device="cpu")
    settings, problems = parse_settings(
        {"model": " m ", "maxNewTokens": 0, "contextLines": 5, "presets": ["A", " "],
         "device": "tpu", "method": "sampling", "unknownKey": 1}, previous)
    assert settings.model == "m"
    assert settings.max_new_tokens is None  # 0: the engine's default
    assert settings.context_lines == 5
    assert settings.presets == ("A",)
    assert settings.device == "cpu"  # the bad value keeps the previous one
    assert settings.method == "speculative"  # absent from previous too: the default
    assert len(problems) == 2 and "specedit.device 'tpu'" in problems[0]
    # Absent or null keys take defaults: the section is the whole truth.
    assert parse_settings({"model": None}, previous)[0] == Settings()
    assert parse_settings({"maxNewTokens": True}, previous)[1]


# -- code actions -----------------------------------------------------------------------------

def test_emacs_without_resolve_gets_preset_commands():
    caps = client_capabilities("emacs")  # eglot: literals, but cannot resolve `edit`
    actions = code_actions("file:///a.py", SELECTION, 4, ["Add docstrings"], caps)
    assert [a.title for a in actions] == [REWRITE_TITLE, "Add docstrings"]
    preset = actions[1]
    assert isinstance(preset, types.CodeAction) and preset.data is None
    assert preset.command.command == COMMAND
    assert preset.command.arguments[0]["instruction"] == "Add docstrings"
    assert preset.command.arguments[0]["version"] == 4


def test_clients_without_literals_get_commands():
    caps = types.ClientCapabilities()
    actions = code_actions("file:///a.py", SELECTION, None, ["P"], caps)
    assert all(isinstance(a, types.Command) for a in actions)
    empty = types.Range(start=SELECTION.start, end=SELECTION.start)
    assert code_actions("file:///a.py", empty, None, ["P"], caps) == []


def test_request_round_trips_through_the_wire():
    request = RewriteRequest("file:///a.py", SELECTION, "Add docstrings", 7)
    assert RewriteRequest.from_wire(request.to_wire()) == request
    with_token = RewriteRequest("file:///a.py", SELECTION, "x", None, "token-1")
    assert RewriteRequest.from_wire(with_token.to_wire()) == with_token
    wire = {"textDocument": {"uri": "file:///a.py"}, "range": request.to_wire()["range"],
            "instruction": "  "}
    assert RewriteRequest.from_wire(wire).instruction is None


@pytest.mark.parametrize(("raw", "field"), [
    ({"textDocument": "file:///a.py", "range": {}}, "textDocument"),
    ({"textDocument": None, "range": {}}, "textDocument"),
    ({"uri": ["file:///a.py"], "range": {}}, "uri"),
    ({"uri": "file:///a.py"}, "range"),
    ({"uri": "file:///a.py", "range": {"start": 1}}, "range"),
    ({"uri": "file:///a.py", "range": {"start": {"line": 0, "character": 0},
                                       "end": {"line": 1, "character": 0}},
      "workDoneToken": {"a": 1}}, "workDoneToken"),
    ("file:///a.py", "object"),
])
def test_malformed_requests_are_refused_naming_the_field(raw, field):
    with pytest.raises(Refused, match=field):
        RewriteRequest.from_wire(raw)


# -- progress text ----------------------------------------------------------------------------

def test_progress_messages():
    assert describe_event(Queued(0)) == (None, None)
    assert describe_event(Queued(2))[0] == "queued behind 2 rewrites"
    assert "loading model m" in describe_event(Loading("m"))[0]
    message, percent = describe_event(Generated(engine.Progress(40, 10, 2.0, 0.5)))
    assert message == "40 tokens, 20.0 tokens/s, 50% of the selection covered"
    assert percent == 50


# -- command line -----------------------------------------------------------------------------

def test_cli_accepts_what_editors_pass():
    parser = argparse.ArgumentParser()
    cli.add_serve_arguments(parser)
    assert not parser.parse_args(["--stdio"]).tcp
    assert not parser.parse_args(["--stdio", "--clientProcessId=42"]).tcp
    args = parser.parse_args(["--tcp", "--host", "127.0.0.1", "--port", "9000"])
    assert (args.tcp, args.host, args.port) == (True, "127.0.0.1", 9000)
    with pytest.raises(SystemExit):
        parser.parse_args(["--stdio", "--tcp"])


def test_specedit_serve_is_registered():
    from engine.cli.main import build_parser

    args = build_parser().parse_args(["serve", "--stdio"])
    assert args.func is cli.run


def test_readme_shows_the_neovim_config_the_e2e_test_runs():
    repo = Path(__file__).resolve().parents[2]
    readme = (repo / "lsp_server" / "README.md").read_text(encoding="utf-8")
    config = (repo / "tests" / "e2e" / "neovim" / "specedit.lua").read_text(encoding="utf-8")
    assert f"```lua\n{config}```" in readme
