"""The bundled sample pictures: all present, readable, captioned and licensed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import backbone_viz as bv
from backbone_viz.files.images import load_image
from backbone_viz.files.samples import SAMPLES_DIR, Sample, list_samples

EXPECTED = ["cat", "astronaut", "china", "coffee", "flower", "grace_hopper", "rocket"]


def test_there_are_seven_samples_cat_first_then_by_name() -> None:
    assert [sample.name for sample in list_samples()] == EXPECTED


def test_samples_dir_is_assets_samples_beside_the_package() -> None:
    expected = Path(__file__).resolve().parents[1] / "assets" / "samples"

    assert expected == SAMPLES_DIR


@pytest.mark.parametrize("sample", list_samples(), ids=lambda sample: sample.name)
def test_each_sample_loads_as_a_small_rgb_picture(sample: Sample) -> None:
    assert sample.path.is_absolute() and sample.path.suffix == ".jpg"

    image = load_image(sample.path)

    assert image.mode == "RGB"
    assert max(image.size) <= 640 and min(image.size) >= 256
    assert sample.path.stat().st_size < 150_000  # keeps the repository small
    with Image.open(sample.path) as stored:
        assert stored.format == "JPEG"


def test_each_sample_has_its_own_caption() -> None:
    captions = json.loads((SAMPLES_DIR / "captions.json").read_text(encoding="utf-8"))
    samples = list_samples()

    assert set(captions) == {sample.path.name for sample in samples}
    for sample in samples:
        assert sample.caption == captions[sample.path.name]
        assert sample.caption.strip() and sample.caption != sample.name
    assert samples[0].caption == "A tabby cat (Chelsea)"


def test_licenses_name_every_sample() -> None:
    licenses = (SAMPLES_DIR / "LICENSES.md").read_text(encoding="utf-8")

    for sample in list_samples():
        assert f"`{sample.path.name}`" in licenses


def test_sample_is_frozen() -> None:
    sample = list_samples()[0]

    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.name = "dog"  # type: ignore[misc]


def test_list_samples_reads_another_folder(tmp_path: Path) -> None:
    for name in ("zebra", "cat", "apple"):
        Image.new("RGB", (32, 32)).save(tmp_path / f"{name}.jpg")
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "captions.json").write_text(json.dumps({"cat.jpg": "A cat"}))

    samples = list_samples(samples_dir=tmp_path)

    assert [(s.name, s.caption) for s in samples] == [
        ("cat", "A cat"),
        ("apple", "apple"),
        ("zebra", "zebra"),
    ]


def test_example_set_contents() -> None:
    examples = bv.example_set()
    assert {k: len(v) for k, v in examples.items()} == {"cat": 3, "coffee": 3, "person": 2}
    assert all(isinstance(im, Image.Image) and im.mode == "RGB" for ims in examples.values() for im in ims)
    cats = [np.asarray(im.resize((64, 64))) for im in examples["cat"]]
    assert not np.array_equal(cats[0], cats[1]) and not np.array_equal(cats[1], cats[2])
