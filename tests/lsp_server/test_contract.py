"""One source of truth: the torch-free contract, and the extension's package.json against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine import contract
from lsp_server.settings import Settings, parse_settings
from tests.helpers.raw_lsp import RawServer

REPO = Path(__file__).resolve().parents[2]
PACKAGE_JSON = REPO / "vscode-extension" / "package.json"

# A `torch` that records being imported and then fails, put first on the path of a child
# process: the contract and the server's handshake must never reach it.
_FAKE_TORCH = """
import os, pathlib
pathlib.Path(os.environ["TORCH_IMPORT_MARKER"]).write_text("torch was imported")
raise ImportError("torch must not be imported here")
"""


@pytest.fixture
def no_torch_env(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(_FAKE_TORCH)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), str(REPO)]),
            "TORCH_IMPORT_MARKER": str(tmp_path / "marker")}


def test_the_contract_and_the_cli_parser_import_no_torch(no_torch_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import sys
        import engine, engine.contract, lsp_server.settings, lsp_server.messages
        from engine.cli.main import build_parser
        build_parser()  # registers every subcommand, `serve` included
        assert "torch" not in sys.modules and "transformers" not in sys.modules
        print(engine.RewriteCancelled.__name__, engine.contract.METHODS)
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=no_torch_env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "marker").exists()


def test_specedit_serve_answers_initialize_without_importing_torch(
        no_torch_env: dict[str, str], tmp_path: Path) -> None:
    server = RawServer(command=[sys.executable, "-m", "engine.cli", "serve", "--stdio"],
                       env=no_torch_env, cwd=tmp_path)
    try:
        reply = server.call("initialize", {"processId": None, "rootUri": None,
                                           "capabilities": {}})
        assert "capabilities" in reply["result"], reply
        assert not (tmp_path / "marker").exists(), "the handshake imported torch"
    finally:
        server.kill()


# -- package.json -----------------------------------------------------------------------------

def _properties() -> dict:
    return json.loads(PACKAGE_JSON.read_text())["contributes"]["configuration"]["properties"]


def test_package_json_defaults_are_the_contracts() -> None:
    props = _properties()
    assert props["specedit.model"]["default"] == contract.BUILTIN_DEFAULT_MODEL
    assert props["specedit.device"]["default"] == contract.DEFAULT_DEVICE
    assert props["specedit.dtype"]["default"] == contract.DEFAULT_DTYPE
    assert props["specedit.method"]["default"] == contract.DEFAULT_METHOD
    assert props["specedit.contextLines"]["default"] == contract.DEFAULT_CONTEXT_LINES
    # 0 on the wire is "no limit": the server's None.
    assert (props["specedit.maxNewTokens"]["default"] or None) == contract.DEFAULT_MAX_NEW_TOKENS
    assert tuple(props["specedit.presets"]["default"]) == contract.DEFAULT_PRESETS
    assert props["specedit.endpoint"]["default"] == contract.DEFAULT_ENDPOINT
    assert props["specedit.endpointModel"]["default"] == contract.DEFAULT_ENDPOINT_MODEL
    assert props["specedit.endpointKeyEnv"]["default"] == contract.DEFAULT_ENDPOINT_KEY_ENV


def test_package_json_enums_are_the_contracts() -> None:
    props = _properties()
    assert props["specedit.device"]["enum"] == list(contract.DEVICES)
    assert props["specedit.dtype"]["enum"] == list(contract.DTYPES)
    assert props["specedit.method"]["enum"] == list(contract.SERVER_METHODS)
    assert len(props["specedit.method"]["enumDescriptions"]) == len(contract.SERVER_METHODS)
    assert set(contract.SERVER_METHODS) <= set(contract.METHODS)


def test_package_json_defaults_parse_to_the_servers_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the extension sends for an untouched configuration is the server's default."""
    monkeypatch.delenv(contract.MODEL_ENV, raising=False)
    section = {key.removeprefix("specedit."): prop["default"]
               for key, prop in _properties().items()
               if "default" in prop and key.removeprefix("specedit.") != "pythonPath"}
    settings, problems = parse_settings(section)
    assert problems == []
    assert settings == Settings()


def test_specedit_model_sets_the_servers_default_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.MODEL_ENV, "my-local-model")
    assert Settings().model == "my-local-model"
    assert parse_settings({})[0].model == "my-local-model"  # a client that names no model
    assert parse_settings({"model": "other"})[0].model == "other"  # an explicit setting wins
    monkeypatch.setenv(contract.MODEL_ENV, "  ")
    assert Settings().model == contract.BUILTIN_DEFAULT_MODEL
