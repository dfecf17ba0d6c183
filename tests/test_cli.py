"""The command line, run as a learner would: ``python -m backbone_viz analyze ...``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import ROOT, SAMPLES


def _run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "BACKBONE_VIZ_WEIGHTS_MIRROR": "http://127.0.0.1:9/"}
    return subprocess.run(
        [sys.executable, "-m", "backbone_viz", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_analyze_writes_a_report_and_json(tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    proc = _run("analyze", str(SAMPLES / "coffee.jpg"), "--out", str(out), "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = json.loads(proc.stdout)
    assert table["predictions"][0]["label"] == "espresso"
    assert table["target"]["index"] == 967
    assert [row["label"] for row in table["layers"]][:2] == ["stem", "blocks.0.0"]
    assert table["layers"][0]["shape"] == [32, 112, 112] and table["layers"][0]["level"] == "low"
    with Image.open(out) as report:
        assert report.width > 1000 and report.height > 500


def test_analyze_with_a_target_label_prints_top5(tmp_path: Path) -> None:
    proc = _run("analyze", str(SAMPLES / "cat.jpg"), "--target", "espresso", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 5 and "cat" in proc.stdout


def test_bad_inputs_give_a_message_and_exit_1(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("these are my notes, not a picture\n", encoding="utf-8")
    proc = _run("analyze", str(text), tmp_path=tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "hint: " in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _run("analyze", str(SAMPLES / "cat.jpg"), "--target", "expresso", tmp_path=tmp_path)
    assert proc.returncode == 1 and "'espresso'" in proc.stderr
    proc = _run("analyze", str(SAMPLES / "cat.jpg"), "--backbone", "resnet50", tmp_path=tmp_path)
    assert proc.returncode == 1 and "resnet50-11ad3fa6.pth" in proc.stderr and "Traceback" not in proc.stderr
    proc = _run("analyze", str(SAMPLES / "cat.jpg"), "--backbone", "alexnet", tmp_path=tmp_path)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_a_device_that_is_not_there_is_explained_by_analyze_and_serve(tmp_path: Path) -> None:
    """A teacher's --device names a device this machine has; otherwise one sentence and exit 1, before
    any model, download or replica is started."""
    proc = _run("analyze", str(SAMPLES / "cat.jpg"), "--device", "gpu", tmp_path=tmp_path)
    assert proc.returncode == 1 and "not a device" in proc.stderr and "auto, cpu, cuda" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _run("serve", "--device", "cuda:7", "--port", "9", tmp_path=tmp_path)
    assert proc.returncode == 1 and "GPU" in proc.stderr and "hint: " in proc.stderr
    assert "replica" not in proc.stdout and "Traceback" not in proc.stderr
    proc = _run("analyze", str(SAMPLES / "cat.jpg"), "--device", "cpu", "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
