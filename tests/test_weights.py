"""Weights: the table, the cache, verified downloads (loopback only), mirrors, locking and USB import."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from weights_server import WeightsServer, leftovers, named, refused_port, silent_port, tiny_checkpoint

import backbone_viz as bv
from backbone_viz.errors import WeightsError
from backbone_viz.files import weights
from backbone_viz.files.weights import WeightsFile

# A fresh, empty torch cache per test and no mirror (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("_own_cache")


@pytest.fixture
def data() -> bytes:
    return tiny_checkpoint()


class Recorder:
    """A progress callback that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int | None) -> None:
        with self._lock:
            self.calls.append((done, total))

    def check(self, size: int) -> None:
        """Starts, never goes back, ends at done == total == size."""
        assert self.calls, "progress was never called"
        dones = [done for done, _ in self.calls]
        assert dones == sorted(dones), self.calls
        assert self.calls[-1] == (size, size)


def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was used")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# ----------------------------------------------------------------------------------------- table, lookups


def test_table_is_torchvisions_files() -> None:
    table = weights.TORCHVISION_WEIGHTS
    assert list(table) == ["vgg16", "vgg19", "resnet18", "resnet50", "resnet101", "googlenet"]
    assert table["resnet50"].filename == "resnet50-11ad3fa6.pth"
    assert table["resnet50"].sha256_prefix == "11ad3fa6"
    for wf in table.values():
        assert wf.url == "https://download.pytorch.org/models/" + wf.filename
    sizes = {name: weights.describe_size(wf.size_bytes) for name, wf in table.items()}
    assert sizes == {
        "vgg16": "528 MB",
        "vgg19": "548 MB",
        "resnet18": "45 MB",
        "resnet50": "98 MB",
        "resnet101": "171 MB",
        "googlenet": "50 MB",
    }


def test_cache_dir_is_torchs_checkpoint_folder(_own_cache: Path) -> None:
    assert weights.cache_dir() == _own_cache
    assert weights.cache_dir() == Path(torch.hub.get_dir()) / "checkpoints"


def test_bundled_path_only_for_lite0() -> None:
    path = weights.bundled_path(bv.get_spec("efficientnet_lite0"))
    assert path is not None and path.is_file() and path.suffix == ".pth"
    assert weights.bundled_path(bv.get_spec("resnet50")) is None


def test_weights_file_needs_a_hash_in_its_name() -> None:
    with pytest.raises(ValueError, match="SHA-256 prefix"):
        WeightsFile("model.pth", "http://127.0.0.1/model.pth")
    with pytest.raises(ValueError, match="SHA-256 prefix"):
        WeightsFile("model-.pth", "http://127.0.0.1/model-.pth")
    with pytest.raises(ValueError, match="bare file name"):
        WeightsFile("a/model-0123abcd.pth", "http://127.0.0.1/x")


def test_describe_size() -> None:
    assert weights.describe_size(None) == "unknown size"
    assert weights.describe_size(512) == "512 bytes"
    assert weights.describe_size(12 * 1024) == "12 kB"  # one formatter for every size: kB, as images say
    assert weights.describe_size(int(4.2 * 1024**2)) == "4.2 MB"
    assert weights.describe_size(int(97.79 * 1024**2)) == "98 MB"
    assert weights.describe_size(3 * 1024**3) == "3.0 GB"


def test_verify_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / named(data)
    path.write_bytes(data)
    wf = WeightsFile(path.name, "http://127.0.0.1/x")
    assert weights.verify_file(path, wf)
    assert weights.verify_file(path, wf.sha256_prefix)
    assert not weights.verify_file(path, "00000000")
    with pytest.raises(WeightsError, match="Cannot read"):
        weights.verify_file(tmp_path / "missing-00000000.pth", "00000000")
    with pytest.raises(ValueError):
        weights.verify_file(path, "")


def test_mirror_and_resolve_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wf = WeightsFile("tiny-0123abcd.pth", "https://example.invalid/models/tiny-0123abcd.pth")
    assert weights.mirror() is None
    assert weights.resolve_source(wf) == wf.url
    monkeypatch.setenv(weights.MIRROR_ENV, "  http://school.local/weights/  ")
    assert weights.mirror() == "http://school.local/weights/"
    assert weights.resolve_source(wf) == "http://school.local/weights/tiny-0123abcd.pth"
    assert weights.resolve_source(wf, "https://s/w") == "https://s/w/tiny-0123abcd.pth"
    assert weights.resolve_source(wf, "https://s/w/tiny-0123abcd.pth") == "https://s/w/tiny-0123abcd.pth"
    assert weights.resolve_source(wf, str(tmp_path)) == str(tmp_path / wf.filename)
    assert weights.resolve_source(wf, tmp_path.as_uri()) == str(tmp_path / wf.filename)
    with pytest.raises(WeightsError, match="neither an http"):
        weights.resolve_source(wf, "ftp://school.local/weights")


# ------------------------------------------------------------------------------------------- downloads


def test_fetch_downloads_verifies_and_reports_progress(
    server: WeightsServer, data: bytes, _own_cache: Path
) -> None:
    wf = server.add(data)
    progress = Recorder()
    path = weights.fetch(wf, progress=progress)
    assert path == _own_cache / wf.filename
    assert path.read_bytes() == data
    assert progress.calls[0] == (0, len(data))
    assert len(progress.calls) >= 4  # several chunks, not just start and end
    progress.check(len(data))
    assert leftovers(_own_cache, keep=(wf.filename,)) == []
    state = torch.load(path, map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    assert torch.equal(state["weight"], torch.nn.Linear(300, 600).weight)


def test_fetch_without_content_length_ends_with_done_equal_total(server: WeightsServer, data: bytes) -> None:
    wf = server.add(data, mode="nolength")
    progress = Recorder()
    weights.fetch(wf, progress=progress)
    assert progress.calls[0] == (0, None)
    progress.check(len(data))


@pytest.mark.parametrize(
    ("mode", "message"),
    [("corrupt", "SHA-256 does not match"), ("truncated", "nothing was kept")],
    ids=["wrong hash", "cut in the middle"],
)
def test_bad_transfer_is_refused_and_nothing_is_left(
    server: WeightsServer, data: bytes, _own_cache: Path, mode: str, message: str
) -> None:
    wf = server.add(data, mode=mode)
    with pytest.raises(WeightsError, match=message) as info:
        weights.fetch(wf)
    assert wf.filename in info.value.message
    assert leftovers(_own_cache) == []  # no file, no temporary file, no lock file
    assert weights.cached_path(wf) is None


def test_server_that_stops_sending_midway_fails_in_bounded_time(
    server: WeightsServer, data: bytes, _own_cache: Path
) -> None:
    wf = server.add(data, mode="stallbody")
    start = time.monotonic()
    with pytest.raises(WeightsError, match="stalled"):
        weights.fetch(wf, stall_timeout=0.5)
    assert time.monotonic() - start < 3
    assert leftovers(_own_cache) == []


def test_server_that_never_answers_says_offline_within_5_seconds(_own_cache: Path) -> None:
    sock, port = silent_port()
    wf = WeightsFile("tiny-0123abcd.pth", f"http://127.0.0.1:{port}/tiny-0123abcd.pth")
    start = time.monotonic()
    try:
        with pytest.raises(WeightsError) as info:
            weights.fetch(wf)  # default timeout: this bound is part of the spec
    finally:
        sock.close()
    assert time.monotonic() - start < 5
    error = info.value
    assert "offline" in error.message and "tiny-0123abcd.pth" in error.message
    for advice in (weights.MIRROR_ENV, "weights import", "efficientnet_lite0", "untrained"):
        assert advice in error.hint
    assert leftovers(_own_cache) == []


def test_refused_connection_says_offline(_own_cache: Path) -> None:
    port = refused_port()
    wf = WeightsFile("tiny-0123abcd.pth", f"http://127.0.0.1:{port}/tiny-0123abcd.pth")
    start = time.monotonic()
    with pytest.raises(WeightsError, match="offline"):
        weights.fetch(wf)
    assert time.monotonic() - start < 2
    assert leftovers(_own_cache) == []


def test_mirror_without_the_file_says_404(
    server: WeightsServer, data: bytes, monkeypatch: pytest.MonkeyPatch, _own_cache: Path
) -> None:
    wf = server.add(data)
    monkeypatch.setenv(weights.MIRROR_ENV, server.url + "/404/")
    with pytest.raises(WeightsError, match="mirror has no file") as info:
        weights.fetch(wf)
    assert "404" in info.value.message and weights.MIRROR_ENV in info.value.hint
    assert leftovers(_own_cache) == []


def test_http_mirror_is_used_instead_of_torchvision(
    server: WeightsServer, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    wf = server.add(data)
    wf = WeightsFile(
        wf.filename, f"http://127.0.0.1:{refused_port()}/{wf.filename}"
    )  # the "internet" is down
    monkeypatch.setenv(weights.MIRROR_ENV, server.url + "/ok")
    path = weights.fetch(wf)
    assert path.read_bytes() == data
    assert server.count(wf.filename) == 1


def test_folder_mirror(
    tmp_path: Path, data: bytes, monkeypatch: pytest.MonkeyPatch, _own_cache: Path
) -> None:
    folder = tmp_path / "school-share"
    folder.mkdir()
    filename = named(data)
    (folder / filename).write_bytes(data)
    wf = WeightsFile(filename, f"http://127.0.0.1:{refused_port()}/{filename}")
    monkeypatch.setenv(weights.MIRROR_ENV, str(folder))
    progress = Recorder()
    assert weights.fetch(wf, progress=progress).read_bytes() == data
    progress.check(len(data))

    other = tiny_checkpoint(seed=1)
    missing = WeightsFile(named(other), "http://127.0.0.1:9/x")
    with pytest.raises(WeightsError, match="has no file"):
        weights.fetch(missing)
    damaged = WeightsFile(named(other, "damaged"), "http://127.0.0.1:9/x")
    (folder / damaged.filename).write_bytes(data)  # the wrong content under the name
    with pytest.raises(WeightsError, match="SHA-256 does not match"):
        weights.fetch(damaged)
    monkeypatch.setenv(weights.MIRROR_ENV, str(tmp_path / "unplugged"))
    with pytest.raises(WeightsError, match="does not exist"):
        weights.fetch(missing)
    assert leftovers(_own_cache, keep=(filename,)) == []


def test_cached_file_is_used_without_any_network(
    data: bytes, monkeypatch: pytest.MonkeyPatch, _own_cache: Path
) -> None:
    wf = WeightsFile(named(data), f"http://127.0.0.1:{refused_port()}/x")
    _own_cache.mkdir(parents=True)
    (_own_cache / wf.filename).write_bytes(data)  # e.g. downloaded earlier by any torchvision program
    no_network(monkeypatch)
    assert weights.cached_path(wf) == _own_cache / wf.filename
    assert weights.ensure(wf) == _own_cache / wf.filename
    progress = Recorder()
    assert weights.fetch(wf, progress=progress) == _own_cache / wf.filename
    progress.check(len(data))


def test_two_threads_download_once(server: WeightsServer, data: bytes, _own_cache: Path) -> None:
    wf = server.add(data, mode="slow")
    barrier = threading.Barrier(2)
    results: list[Path] = []
    errors: list[BaseException] = []
    recorders = [Recorder(), Recorder()]

    def worker(progress: Recorder) -> None:
        barrier.wait()
        try:
            results.append(weights.ensure(wf, progress=progress))
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(r,)) for r in recorders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors, errors
    assert results == [_own_cache / wf.filename] * 2
    assert server.count(wf.filename) == 1
    for recorder in recorders:
        recorder.check(len(data))
    assert leftovers(_own_cache, keep=(wf.filename,)) == []


def test_lock_excludes_while_its_file_is_removed_and_made_again(tmp_path: Path) -> None:
    """Each holder removes the lock file; a waiter that locked the removed file must not count as holder."""
    inside: list[int] = []
    overlaps: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(40):
                with weights._file_lock(tmp_path, "tiny-0123abcd.pth", progress=None, idle_timeout=30):
                    inside.append(1)
                    if len(inside) > 1:
                        overlaps.append(len(inside))
                    time.sleep(0.001)
                    inside.pop()
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert overlaps == []
    assert leftovers(tmp_path) == []


def _fetch_in_process(wf: WeightsFile, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    weights.fetch(wf)


def test_two_processes_download_once(server: WeightsServer, data: bytes, _own_cache: Path) -> None:
    context = multiprocessing.get_context("fork")  # children inherit TORCH_HOME and the loaded modules
    wf = server.add(data, mode="slow")
    barrier = context.Barrier(2)
    processes = [context.Process(target=_fetch_in_process, args=(wf, barrier)) for _ in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=20)
    assert [p.exitcode for p in processes] == [0, 0]
    assert server.count(wf.filename) == 1
    assert (_own_cache / wf.filename).read_bytes() == data
    assert leftovers(_own_cache, keep=(wf.filename,)) == []


def test_waiting_for_a_hung_download_is_bounded(server: WeightsServer, data: bytes, _own_cache: Path) -> None:
    wf = server.add(data)
    _own_cache.mkdir(parents=True)
    # Another "process" holds the lock and never makes progress.
    fd = os.open(_own_cache / f"{wf.filename}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        start = time.monotonic()
        with pytest.raises(WeightsError, match="without progress"):
            weights.fetch(wf, lock_idle_timeout=0.3)
        assert time.monotonic() - start < 3
    finally:
        os.close(fd)
    assert server.count(wf.filename) == 0


def test_leftovers_of_a_killed_download_are_cleaned(
    server: WeightsServer, data: bytes, _own_cache: Path
) -> None:
    wf = server.add(data)
    _own_cache.mkdir(parents=True)
    (_own_cache / f".{wf.filename}.abc123.part").write_bytes(data[:100])  # a process killed mid-way
    (_own_cache / f"{wf.filename}.lock").touch()
    assert weights.fetch(wf).read_bytes() == data
    assert leftovers(_own_cache, keep=(wf.filename,)) == []


def test_cache_that_cannot_be_created(tmp_path: Path, data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # As root, chmod does not stop writes; a path under a regular file cannot be created by anyone.
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TORCH_HOME", str(blocker / "torch"))
    wf = WeightsFile(named(data), "http://127.0.0.1:9/x")
    with pytest.raises(WeightsError, match="Cannot write the weights folder") as info:
        weights.fetch(wf)
    assert str(blocker / "torch" / "hub" / "checkpoints") in info.value.message
    assert "TORCH_HOME" in info.value.hint


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only folder")
def test_read_only_cache(data: bytes, _own_cache: Path) -> None:
    _own_cache.mkdir(parents=True)
    _own_cache.chmod(0o555)
    try:
        with pytest.raises(WeightsError, match="Cannot write the weights folder"):
            weights.fetch(WeightsFile(named(data), "http://127.0.0.1:9/x"))
    finally:
        _own_cache.chmod(0o755)


# ----------------------------------------------------------------------------------------------- import


def test_import_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _own_cache: Path) -> None:
    good, renamed, broken = (tiny_checkpoint(seed=s, shape=(8, 4)) for s in (1, 2, 3))
    table = {
        "alpha": WeightsFile(named(good, "alpha"), "http://127.0.0.1:9/a"),
        "beta": WeightsFile(named(renamed, "beta"), "http://127.0.0.1:9/b"),
        "gamma": WeightsFile(named(broken, "gamma"), "http://127.0.0.1:9/c"),
    }
    monkeypatch.setattr(weights, "TORCHVISION_WEIGHTS", table)
    usb = tmp_path / "usb"
    (usb / "models" / "deep").mkdir(parents=True)
    (usb / "models" / table["alpha"].filename).write_bytes(good)
    (usb / "models" / "deep" / f"{named(renamed, 'Beta_copy')[:-4]} (1).pth").write_bytes(
        renamed
    )  # renamed copy
    (usb / table["gamma"].filename).write_bytes(good)  # damaged: wrong content under gamma's name
    (usb / "alexnet-owt-7be5be79.pth").write_bytes(b"x")  # torchvision-style, but not a file we use
    (usb / "notes.txt").write_text("holiday photos")
    progress = Recorder()

    report = weights.import_folder(usb, progress=progress)
    assert sorted(report.imported) == sorted([table["alpha"].filename, table["beta"].filename])
    assert report.already_present == ()
    assert [(p.name, "SHA-256" in reason) for p, reason in report.failed] == [(table["gamma"].filename, True)]
    assert [p.name for p in report.unknown] == ["alexnet-owt-7be5be79.pth"]
    assert report.missing == (table["gamma"].filename,) and not report.ok
    assert (_own_cache / table["alpha"].filename).read_bytes() == good
    assert (_own_cache / table["beta"].filename).read_bytes() == renamed
    total = len(good) + len(renamed) + len(good)
    assert progress.calls[0] == (0, total)
    progress.check(total)
    assert leftovers(_own_cache, keep=(table["alpha"].filename, table["beta"].filename)) == []

    # A good copy elsewhere on the stick fixes gamma; alpha and beta are already there now.
    (usb / "zz-fixed").mkdir()
    (usb / "zz-fixed" / table["gamma"].filename).write_bytes(broken)
    again = weights.import_folder(usb)
    assert sorted(again.already_present) == sorted([table["alpha"].filename, table["beta"].filename])
    assert again.imported == (table["gamma"].filename,)
    assert again.missing == () and again.ok


def test_import_from_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="is not a folder"):
        weights.import_folder(tmp_path / "no-usb-stick")
