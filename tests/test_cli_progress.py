"""The command line's one progress bar: bytes in MB for a download, steps for training and the atlas."""

from __future__ import annotations

import pytest

from backbone_viz.cli.progress import progress_printer


def test_a_download_shows_megabytes_and_ends_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress_printer("weights")
    bar(12_300_000, 46_800_000)
    assert capsys.readouterr().err == "\rweights [#######.......................]   12.3/46.8 MB"
    bar(46_800_000, 46_800_000)
    assert capsys.readouterr().err == f"\rweights [{'#' * 30}]   46.8/46.8 MB\n"
    bar(5_000_000, None)  # a download without a length: no bar, only what has come
    assert capsys.readouterr().err == "\rweights    5.0 MB"


def test_training_shows_steps(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress_printer("train", counts="steps")
    bar(25, 50)
    assert capsys.readouterr().err == f"\rtrain [{'#' * 15}{'.' * 15}] 25/50 steps"
    bar(50, 50)
    assert capsys.readouterr().err.endswith("] 50/50 steps\n")
