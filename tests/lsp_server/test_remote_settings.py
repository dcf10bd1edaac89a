"""The endpoint settings: parsed, checked, and what they make of the model spec."""

from __future__ import annotations

from engine.contract import DEFAULT_ENDPOINT_KEY_ENV
from lsp_server.remote import coverage, endpoint_of
from lsp_server.settings import ModelSpec, Settings, parse_settings


def test_no_endpoint_is_the_in_process_engine() -> None:
    assert Settings().model_spec == ModelSpec(Settings().model, "auto", "auto")
    assert Settings().model_spec.endpoint is None


def test_an_endpoint_makes_a_remote_spec() -> None:
    settings, problems = parse_settings({"model": "m", "endpoint": "http://box:8000",
                                         "endpointModel": "served", "endpointKeyEnv": "MY_KEY"})
    assert problems == []
    spec = settings.model_spec
    assert (spec.endpoint, spec.model, spec.key_env) == ("http://box:8000/v1", "served", "MY_KEY")
    # No endpoint model: the model setting names it.
    settings, _ = parse_settings({"model": "m", "endpoint": "http://box/v1"})
    assert settings.model_spec.model == "m"
    assert settings.model_spec.key_env == DEFAULT_ENDPOINT_KEY_ENV


def test_bad_endpoint_values_are_reported_and_the_previous_kept() -> None:
    previous, _ = parse_settings({"endpoint": "http://box/v1"})
    settings, problems = parse_settings({"endpoint": "box:8000", "endpointKeyEnv": "sk-abc def"},
                                        previous)
    assert settings.endpoint == "http://box/v1"
    assert settings.endpoint_key_env == DEFAULT_ENDPOINT_KEY_ENV
    assert len(problems) == 2
    assert "specedit.endpoint" in problems[0] and "http://" in problems[0]
    assert "must name an environment variable" in problems[1]


def test_the_key_comes_from_the_environment_variable_named() -> None:
    spec = ModelSpec("m", "auto", "auto", endpoint="http://box/v1", key_env="K")
    assert endpoint_of(spec, {"K": " secret "}).api_key == "secret"
    assert endpoint_of(spec, {}).api_key is None
    assert endpoint_of(spec, {}).headers() == {}


def test_coverage_follows_the_original_lines() -> None:
    original = "a\nb\nc\nd\n"
    assert coverage(None, original) is None
    assert coverage("", original) == 0.0
    assert coverage("a\nb\n", original) == 0.5
    assert coverage("# new\na\nb\nc\nd\n", original) == 1.0
