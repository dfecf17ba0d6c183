"""``python -m backbone_viz weights list | fetch | import``, run in-process against a loopback server."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from weights_server import WeightsServer, leftovers, named, refused_port, tiny_checkpoint

from backbone_viz.cli import weights as cli_weights
from backbone_viz.files import weights
from backbone_viz.files.weights import WeightsFile

ROOT = Path(__file__).resolve().parents[1]


# A fresh, empty torch cache per test and no mirror (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("_own_cache")


@pytest.fixture
def table(server: WeightsServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, WeightsFile]:
    """Two small downloadable "backbones" served by the loopback server, in place of the real table."""
    files = {
        "tinynet": server.add(tiny_checkpoint(seed=1), "tinynet"),
        "smallnet": server.add(tiny_checkpoint(seed=2, shape=(16, 8)), "smallnet"),
    }
    monkeypatch.setattr(weights, "TORCHVISION_WEIGHTS", files)
    return files


def test_list_shows_every_backbone_and_where(
    table: dict[str, WeightsFile], capsys: pytest.CaptureFixture[str], _own_cache: Path
) -> None:
    _own_cache.mkdir(parents=True)
    (_own_cache / table["smallnet"].filename).write_bytes(tiny_checkpoint(seed=2, shape=(16, 8)))
    assert cli_weights.main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "bundled" in lines["efficientnet_lite0"] and "efficientnet-lite0" in lines["efficientnet_lite0"]
    assert "missing" in lines["tinynet"] and table["tinynet"].url in lines["tinynet"]
    assert weights.describe_size(table["tinynet"].size_bytes) in lines["tinynet"]
    assert "here" in lines["smallnet"] and str(_own_cache / table["smallnet"].filename) in lines["smallnet"]
    assert str(_own_cache) in out and "mirror: none" in out
    assert "device: " in out and "BACKBONE_VIZ_DEVICE" in out


def test_list_shows_the_mirror(
    table: dict[str, WeightsFile], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(weights.MIRROR_ENV, "http://school.local/weights")
    assert cli_weights.main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert f"from mirror http://school.local/weights/{table['tinynet'].filename}" in out
    assert f"mirror: http://school.local/weights  (from {weights.MIRROR_ENV})" in out


def test_fetch_downloads_with_a_progress_bar(
    table: dict[str, WeightsFile], server: WeightsServer, capsys: pytest.CaptureFixture[str], _own_cache: Path
) -> None:
    assert cli_weights.main(["weights", "fetch", "tinynet"]) == 0
    captured = capsys.readouterr()
    assert "tinynet: ready, verified" in captured.out
    assert "100%" in captured.err and "MB" in captured.err
    assert (_own_cache / table["tinynet"].filename).is_file()
    assert server.count(table["tinynet"].filename) == 1

    # Again: already here, and no network at all.
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was used")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(urllib.request, "urlopen", refuse)
        assert cli_weights.main(["weights", "fetch", "tinynet", "efficientnet_lite0"]) == 0
    out = capsys.readouterr().out
    assert "tinynet: already here" in out and "efficientnet_lite0: ships with the install" in out


def test_fetch_all_reports_what_failed(
    server: WeightsServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    _own_cache: Path,
) -> None:
    good = server.add(tiny_checkpoint(seed=1), "good")
    gone = server.add(tiny_checkpoint(seed=2), "gone", mode="404")
    damaged = server.add(tiny_checkpoint(seed=3), "damaged", mode="corrupt")
    monkeypatch.setattr(weights, "TORCHVISION_WEIGHTS", {"good": good, "gone": gone, "damaged": damaged})
    assert cli_weights.main(["weights", "fetch", "--all"]) == 1
    captured = capsys.readouterr()
    assert "good: ready, verified" in captured.out
    assert "gone: failed: The download address" in captured.out and "404" in captured.out
    assert "damaged: failed:" in captured.out and "SHA-256" in captured.out
    assert captured.err.strip().splitlines()[-1] == "error: not ready: gone, damaged (see the messages above)"
    assert leftovers(_own_cache, keep=(good.filename,)) == []


def test_fetch_offline_exits_1_with_the_advice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_checkpoint()
    wf = WeightsFile(named(data), f"http://127.0.0.1:{refused_port()}/{named(data)}")
    monkeypatch.setattr(weights, "TORCHVISION_WEIGHTS", {"tinynet": wf})
    assert cli_weights.main(["weights", "fetch", "tinynet"]) == 1
    out = capsys.readouterr().out
    assert "offline" in out and "weights import FOLDER" in out


def test_fetch_usage_errors_exit_2(table: dict[str, WeightsFile], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_weights.main(["weights", "fetch", "alexnet"]) == 2
    err = capsys.readouterr().err
    assert "unknown backbone 'alexnet'" in err and "efficientnet_lite0, tinynet, smallnet" in err
    assert cli_weights.main(["weights", "fetch"]) == 2
    assert cli_weights.main(["weights", "fetch", "tinynet", "--all"]) == 2
    assert cli_weights.main(["weights"]) == 2
    assert cli_weights.main(["weights", "import"]) == 2


def test_import_copies_good_files_and_skips_damaged_ones(
    table: dict[str, WeightsFile], tmp_path: Path, capsys: pytest.CaptureFixture[str], _own_cache: Path
) -> None:
    usb = tmp_path / "usb"
    (usb / "weights").mkdir(parents=True)
    (usb / "weights" / table["tinynet"].filename).write_bytes(tiny_checkpoint(seed=1))
    assert cli_weights.main(["weights", "import", str(usb)]) == 0
    out = capsys.readouterr().out
    assert f"imported  {table['tinynet'].filename}" in out
    assert "1 of 2 downloadable backbones ready: tinynet" in out

    (usb / table["smallnet"].filename).write_bytes(b"not the weights")
    assert cli_weights.main(["weights", "import", str(usb)]) == 1
    captured = capsys.readouterr()
    assert f"present   {table['tinynet'].filename}" in captured.out
    assert f"skipped   {usb / table['smallnet'].filename}" in captured.out
    assert (
        captured.err.strip().splitlines()[-1]
        == f"error: only damaged copies found of: {table['smallnet'].filename}"
    )
    assert leftovers(_own_cache, keep=(table["tinynet"].filename,)) == []


def test_import_of_an_empty_or_missing_folder_exits_1(
    table: dict[str, WeightsFile], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_weights.main(["weights", "import", str(tmp_path)]) == 1
    assert "no weights files found" in capsys.readouterr().err
    assert cli_weights.main(["weights", "import", str(tmp_path / "nothing")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_add_weights_parser_plugs_into_another_parser() -> None:
    parser = argparse.ArgumentParser()
    cli_weights.add_weights_parser(parser.add_subparsers(dest="command", required=True))
    assert parser.parse_args(["weights", "list"]).func is cli_weights.cmd_list
    args = parser.parse_args(["weights", "fetch", "--all"])
    assert args.func is cli_weights.cmd_fetch and args.all and args.names == []
    args = parser.parse_args(["weights", "import", "/media/usb"])
    assert args.func is cli_weights.cmd_import and args.folder == Path("/media/usb")


def test_progress_bar_on_a_terminal() -> None:
    class Terminal:
        def __init__(self) -> None:
            self.text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return True

    term = Terminal()
    bar = cli_weights.ProgressBar("resnet50", stream=term)
    bar(0, 100 * 1024 * 1024)
    bar(100 * 1024 * 1024, 100 * 1024 * 1024)
    bar.close()
    assert term.text.startswith("\rresnet50  [") and "100.0/100.0 MB 100%" in term.text
    assert term.text.endswith("\n")


def test_python_m_backbone_viz_weights_list(tmp_path: Path) -> None:
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch-home")}
    env.pop(weights.MIRROR_ENV, None)
    done = subprocess.run(
        [sys.executable, "-m", "backbone_viz", "weights", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for name in ("efficientnet_lite0", "vgg16", "vgg19", "resnet18", "resnet50", "resnet101", "googlenet"):
        assert name in done.stdout
    assert "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" in done.stdout
