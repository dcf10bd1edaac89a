"""Compile kernels.c on first use and load it with ctypes.

The library is built with the system C compiler (``$CC``, else ``cc``, else ``gcc``) as
``-O3 -march=native -fopenmp`` (falling back to no ``-march=native`` and/or no ``-fopenmp``
where the compiler refuses them) into a cache folder: ``$SPECEDIT_CACHE/kernels/``, else
``platformdirs.user_cache_path("speculative-edits")/kernels/``. The file name carries a hash
of the source, the compiler's ``--version``, the flags, this CPU's model name and flags and
the machine type, so a cache copied to another CPU never loads a library built for this one.
Builds go to a temporary name and are renamed into place, so two processes can race safely.

The library is loaded after torch: torch ships its own ``libgomp.so.1``, and a library that
needs ``libgomp.so.1`` then binds to that copy (the loader matches the soname already
mapped), so the kernels share torch's OpenMP runtime instead of starting a second one.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from engine.contract import SpecEditError

SOURCE = Path(__file__).with_name("kernels.c")

# Always on: -ffp-contract=off is part of the kernels' contract (the scalar path must not
# have a*b+c fused behind its back), -std=c11 for aligned_alloc.
BASE_FLAGS = ["-O3", "-std=c11", "-ffp-contract=off", "-fPIC", "-shared"]
# Tried in order; the first that compiles wins.
OPTIONAL_FLAG_SETS = [["-march=native", "-fopenmp"], ["-fopenmp"], ["-march=native"], []]
# The scalar variant (tests compare it with the AVX2 one) is the same source with the
# intrinsics switched off.
VARIANT_FLAGS = {"native": [], "scalar": ["-DSEK_FORCE_SCALAR"]}

_INSTALL_HINT = "install a C compiler with OpenMP (e.g. `apt-get install gcc`) or set CC"


class KernelsUnavailable(SpecEditError, RuntimeError):
    """The native kernels cannot be built or loaded on this machine (a one-line error for the
    command line and the servers, like every SpecEditError)."""


def cache_dir() -> Path:
    root = os.environ.get("SPECEDIT_CACHE")
    if root:
        return Path(root).expanduser() / "kernels"
    import platformdirs

    return Path(platformdirs.user_cache_path("speculative-edits")) / "kernels"


def _compiler() -> list[str]:
    env = os.environ.get("CC", "").strip()
    if env:
        cmd = shlex.split(env)
        if shutil.which(cmd[0]) is None:
            raise KernelsUnavailable(f"CC={env!r} is not an executable: {_INSTALL_HINT}")
        return cmd
    for name in ("cc", "gcc"):
        if shutil.which(name):
            return [name]
    raise KernelsUnavailable(f"no C compiler found for the native kernels: {_INSTALL_HINT}")


def _compiler_version(cc: list[str]) -> str:
    try:
        done = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise KernelsUnavailable(f"the C compiler {cc[0]!r} does not run ({exc}): "
                                 f"{_INSTALL_HINT}") from None
    return done.stdout + done.stderr


def _cpu_identity() -> str:
    """The CPU's model name and feature flags (first processor in /proc/cpuinfo)."""
    model = flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model") and not model:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = " ".join(sorted(value.split()))
                if model and flags:
                    break
    except OSError:
        pass
    return f"{model}|{flags}|{platform.processor()}"


def library_name(source: bytes, version: str, cc: list[str], flags: list[str]) -> str:
    h = hashlib.sha256()
    for part in (source, version.encode(), " ".join(cc).encode(), " ".join(flags).encode(),
                 _cpu_identity().encode(), platform.machine().encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return f"kernels-{h.hexdigest()[:24]}.so"


def _compile(cc: list[str], flags: list[str], target: Path) -> str | None:
    """Compile into target (atomically); returns None or the compiler's complaint."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        cmd = [*cc, *flags, "-o", tmp, str(SOURCE), "-lm"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as exc:
            return str(exc)
        if done.returncode != 0:
            return (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        os.replace(tmp, target)
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build(variant: str = "native") -> Path:
    """Path of the compiled library for this machine (compiling it if needed)."""
    if variant not in VARIANT_FLAGS:
        raise ValueError(f"unknown kernels variant {variant!r}")
    cc = _compiler()
    version = _compiler_version(cc)
    source = SOURCE.read_bytes()
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KernelsUnavailable(f"cannot create the kernels cache {folder} ({exc}): set "
                                 "SPECEDIT_CACHE to a writable folder") from None
    candidates = []
    for optional in OPTIONAL_FLAG_SETS:
        flags = [*BASE_FLAGS, *optional, *VARIANT_FLAGS[variant]]
        candidates.append((flags, folder / library_name(source, version, cc, flags)))
    # The first flag set that is built already, or builds; sets that failed once (a marker
    # file beside them; delete the folder after installing what was missing) are skipped.
    complaints = []
    for flags, path in candidates:
        failed = path.with_suffix(".failed")
        if path.exists():
            return path
        if failed.exists():
            continue
        complaint = _compile(cc, flags, path)
        if complaint is None:
            return path
        complaints.append(complaint)
        with contextlib.suppress(OSError):
            failed.write_text(complaint + "\n", encoding="utf-8")
    first = complaints[0].splitlines()[0] if complaints else "no flag set compiled"
    raise KernelsUnavailable(f"building the native kernels with {cc[0]} failed ({first}): "
                             f"{_INSTALL_HINT}")


_loaded: dict[str, ctypes.CDLL] = {}
_lock = threading.Lock()


def load(variant: str = "native") -> ctypes.CDLL:
    """The kernels library (built on first use), with its functions' signatures declared."""
    lib = _loaded.get(variant)
    if lib is not None:
        return lib
    with _lock:
        lib = _loaded.get(variant)
        if lib is None:
            import torch  # noqa: F401  (first: its libgomp.so.1 is the one the kernels bind to)

            path = build(variant)
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as exc:
                raise KernelsUnavailable(f"loading the native kernels {path} failed ({exc}): "
                                         f"delete it and {_INSTALL_HINT}") from None
            _declare(lib)
            _loaded[variant] = lib
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    i64, i32, ptr, f32 = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p, ctypes.c_float
    signatures = {
        "sek_simd": [],
        "sek_openmp": [],
        "sek_exp": [ptr, ptr, i64],
        "sek_q8_row_bytes": [i64],
        "sek_quantize_rows_q8": [ptr, i64, i64, i64, ptr, i32],
        "sek_matmul_q8": [ptr, i64, i64, ptr, i32, i64, ptr, ptr, i64, i32],
        "sek_matmul": [ptr, i64, i64, i64, ptr, i32, i64, ptr, ptr, i64, i32],
        "sek_attention": [ptr, i64, i64, i64, ptr, ptr, i64, i64, i64, i64, i64, f32, ptr, i32],
        "sek_rms_norm": [ptr, i64, i64, ptr, f32, ptr, i32],
        "sek_silu_mul": [ptr, i64, ptr, i64, i64, i64, ptr, i64, i32],
        "sek_get_rows": [ptr, i32, i64, i64, ptr, i64, ptr, i32],
        "sek_forward": [ptr, ptr, i64, i64, ptr, ptr, i64, ptr, ptr, i64, ptr, i32],
    }
    for name, argtypes in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = i64 if name == "sek_q8_row_bytes" else i32


def mapped_openmp_runtimes() -> list[str]:
    """The OpenMP runtime files mapped into this process (Linux; for diagnostics)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if line.strip() and "/" in line}
    except OSError:
        return []
    names = ("gomp", "libomp", "iomp")
    return sorted(p for p in paths if any(n in os.path.basename(p) for n in names))
