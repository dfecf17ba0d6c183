"""The dense heads' command line (``box``, ``segment``, ``detect``) on the bundled EfficientNet-Lite0.

The commands run in-process through :func:`backbone_viz.cli.main` with the session's loaded backbone in
place of loading one (one real ``python -m backbone_viz box`` checks the registration), and their
answers are checked against the engine and against pictures whose truth is known.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import backbone_viz as bv
from backbone_viz.cli import heads, main
from backbone_viz.files.samples import list_samples
from tests.composites import composites
from tests.conftest import ROOT, SAMPLES, sample

RED, BLUE, GREEN, ORANGE, PURPLE = (230, 30, 30), (30, 80, 230), (30, 170, 60), (255, 150, 0), (130, 50, 180)
#: The cat's left eye (the picture's left) in Lite0's 224 x 224 crop of the cat sample.
EYE = (28, 50, 104, 118)

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def run(lite0: bv.Backbone, one_thread: None) -> Iterator[Run]:
    """``run(*argv) -> (exit code, stdout, stderr)`` of the command line, with Lite0 already loaded."""

    def invoke(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
        return code, out.getvalue(), err.getvalue()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(heads, "_backbone", lambda args: lite0)
        yield invoke


def _user_error(ran: tuple[int, str, str], *words: str) -> None:
    """A learner's mistake: exit 1, an ``error:`` line and a ``hint:`` line naming ``words``, no traceback."""
    code, _, err = ran
    assert code == 1, err
    lines = err.strip().splitlines()
    assert lines[-2].startswith("error: ") and lines[-1].startswith("hint: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


def _png(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray(pixels).save(path)
    return path


# ------------------------------------------------------------------------------------------------------ box


@pytest.fixture(scope="module")
def flower_boxes(run: Run, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("box") / "boxed.png"
    code, text, err = run("box", SAMPLES / "flower.jpg", "--json", "--out", out)
    assert code == 0, err
    return json.loads(text), out


def test_box_gives_the_engines_box_at_every_stage(
    lite0: bv.Backbone, flower_boxes: tuple[dict, Path]
) -> None:
    table, _ = flower_boxes
    result = bv.analyze(lite0, sample("flower"))
    assert table["target"]["label"] == result.target.label and table["crop"] == [224, 224]
    assert [row["stage"] for row in table["stages"]] == [s.index for s in lite0.spec.stages]
    for row, (index, box) in zip(table["stages"], bv.boxes_by_stage(result).items(), strict=True):
        assert row["stage"] == index and row["box"] == list(box.box) and row["regions"] == box.regions
        assert row["box_share"] == pytest.approx(box.box_share, abs=1e-4)
    last = table["stages"][-1]
    assert last["box"] == list(bv.box_from_cam(result).box)
    # The high stage boxes the flower, not the whole crop (the flower fills about half of it).
    assert last["box"] != [0, 0, 223, 223] and 0.25 < last["box_share"] < 0.8
    assert last["layer"] == lite0.spec.stages[-1].last.label


def test_box_writes_one_labelled_crop_per_stage(flower_boxes: tuple[dict, Path]) -> None:
    _, out = flower_boxes
    with Image.open(out) as picture:
        # Five 224-px crops side by side with their gaps, a title above and three lines of labels below.
        assert picture.width >= 5 * 224 and 224 + 3 * 14 < picture.height < 224 + 150


def test_box_prints_one_line_per_stage(run: Run) -> None:
    code, text, err = run("box", SAMPLES / "flower.jpg", "--threshold", "0.5")
    assert code == 0, err
    lines = text.strip().splitlines()
    assert "224x224 crop" in lines[0] and len(lines) == 1 + 5
    assert [line.split()[:2] for line in lines[1:]] == [["stage", str(i)] for i in range(1, 6)]


def test_box_bad_inputs(run: Run, tmp_path: Path) -> None:
    _user_error(run("box", SAMPLES / "flower.jpg", "--threshold", "1.5"), "threshold", "0.2")
    _user_error(run("box", tmp_path / "missing.jpg"))
    _user_error(run("box", SAMPLES / "flower.jpg", "--target", "expresso"), "'espresso'")


def test_box_from_the_real_command_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TORCH_HOME": str(tmp_path / "torch"),
        "BACKBONE_VIZ_WEIGHTS_MIRROR": "http://127.0.0.1:9/",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "backbone_viz", "box", str(SAMPLES / "cat.jpg"), "--threshold", "7"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    _user_error((proc.returncode, proc.stdout, proc.stderr), "threshold")
    proc = subprocess.run(
        [sys.executable, "-m", "backbone_viz", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and all(name in proc.stdout for name in ("box", "segment", "detect"))


# -------------------------------------------------------------------------------------------------- segment


def _scribbles(mask: np.ndarray, inside: tuple[int, int, int], outside: tuple[int, int, int]) -> np.ndarray:
    """(H, W, 4) RGBA: horizontal strokes every 24 rows, ``inside`` well within the mask and ``outside``
    well outside it, transparent elsewhere."""
    rows = (np.arange(mask.shape[0]) % 24 < 3)[:, None]
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[ndimage.binary_erosion(mask, iterations=10) & rows] = (*inside, 255)
    rgba[ndimage.binary_erosion(~mask, iterations=10) & rows] = (*outside, 255)
    return rgba


@pytest.fixture(scope="module")
def segmented(run: Run, lite0: bv.Backbone, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The first composite (cat fur on china) segmented from scribbles inside and outside its true mask."""
    folder = tmp_path_factory.mktemp("segment")
    thing = composites(224, count=1)[0]
    image = folder / "composite.png"
    thing.image.save(image)
    strokes = _png(_scribbles(thing.mask, RED, BLUE), folder / "strokes.png")
    out = folder / "mask.png"
    code, text, err = run(
        "segment",
        image,
        "--strokes",
        strokes,
        "--labels",
        "thing=red,background=blue",
        "--out",
        out,
        "--json",
    )
    assert code == 0, err
    # The composite is 224 px, and the backbone crops it as any picture (resize to 256, centre cut):
    # the truth in the crop is the true mask carried the same way (bicubic, then halved).
    truth = np.asarray(lite0.crop(Image.fromarray(thing.mask.astype(np.uint8) * 255)))[..., 0] > 127
    crop = np.asarray(lite0.crop(thing.image), np.float32)
    with Image.open(out) as written:
        tinted = np.asarray(written, np.float32)
    # The file is (crop + colour) / 2: twice it minus the crop is each pixel's label colour.
    colour = 2 * tinted - crop
    palette = np.asarray([RED, BLUE], np.float32)
    mask = np.linalg.norm(colour[:, :, None] - palette[None, None], axis=-1).argmin(axis=-1) == 0
    return {"table": json.loads(text), "truth": truth, "mask": mask}


def test_segment_finds_the_true_mask_from_a_few_strokes(segmented: dict) -> None:
    truth, mask = segmented["truth"], segmented["mask"]
    ious = [bv.mask_iou(mask, truth), bv.mask_iou(~mask, ~truth)]
    # Measured 0.95 on this composite (0.95 to 0.98 on the first four).
    assert np.mean(ious) >= 0.85, ious


def test_segment_json_names_labels_shares_and_stages(segmented: dict, lite0: bv.Backbone) -> None:
    table, mask = segmented["table"], segmented["mask"]
    assert [label["name"] for label in table["labels"]] == ["thing", "background"]
    assert [label["colour"] for label in table["labels"]] == ["#e61e1e", "#1e50e6"]
    assert table["labels"][0]["share"] == pytest.approx(mask.mean(), abs=1e-3)
    assert sum(label["share"] for label in table["labels"]) == pytest.approx(1.0, abs=1e-3)
    assert table["stages"] == [s.index for s in lite0.spec.stages] and table["painted_on"] == "image"
    assert table["fit_ms"] > 0 and table["ignored_pixels"] == 0
    assert all(label["painted_in_crop"] > 100 for label in table["labels"])


def test_positional_labels_follow_the_colours_reading_order(run: Run, tmp_path: Path) -> None:
    """``--labels a,b`` names the colour met first reading from the top row down, then the next."""
    image = tmp_path / "flower.png"
    sample("flower").save(image)
    width, height = sample("flower").size
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[10:30, 10:200] = (*BLUE, 255)  # blue is higher up: it is the first label
    rgba[200:240, 250:400] = (*RED, 255)
    strokes = _png(rgba, tmp_path / "strokes.png")
    code, text, err = run("segment", image, "--strokes", strokes, "--labels", "sky,flower", "--json")
    assert code == 0, err
    labels = json.loads(text)["labels"]
    assert [(label["name"], label["colour"]) for label in labels] == [
        ("sky", "#1e50e6"),
        ("flower", "#e61e1e"),
    ]
    code, text, err = run("segment", image, "--strokes", strokes)
    assert code == 0, err
    assert text.splitlines()[1].startswith("blue") and text.splitlines()[2].startswith("red")


def test_strokes_on_the_picture_land_where_the_backbone_crops_it(lite0: bv.Backbone, tmp_path: Path) -> None:
    """A 451 x 300 picture: its shorter side becomes 256, its width int(256 * 451 / 300) = 384, and the
    centre 224 x 224 is cut from x = 80, y = 16. Crop pixel (x, y) shows the picture pixel under its
    centre: (x + 80.5) * 451 / 384, (y + 16.5) * 300 / 256; so a stroke at picture pixels x 200..259,
    y 100..159 lands at crop x 90..140 (89.8 <= x < 140.9) and y 69..120 (68.8 <= y < 120.03)."""
    cat = sample("cat")
    assert cat.size == (451, 300)
    rgba = np.zeros((300, 451, 4), np.uint8)
    rgba[100:160, 200:260] = (*RED, 255)
    rgba[250:280, 10:440] = (*BLUE, 255)
    strokes = heads.read_strokes(_png(rgba, tmp_path / "strokes.png"), cat, lite0.preprocessing)
    assert strokes.painted_on == "image" and strokes.labels.shape == (224, 224)
    assert strokes.colours == (RED, BLUE) and strokes.pixels == (60 * 60, 30 * 430)
    ys, xs = np.nonzero(strokes.labels == 0)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (90, 140, 69, 120)
    assert np.count_nonzero(strokes.labels == 0) == 51 * 52
    ys, xs = np.nonzero(strokes.labels == 1)
    # The band (x 10..439) is cut at both sides of the crop; y 250..279 -> 196.8 <= y < 222.4.
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (0, 223, 197, 222)
    # The same place as the backbone's own (bicubic) crop of the stroke shows it.
    drawn = np.zeros((300, 451), np.uint8)
    drawn[100:160, 200:260] = 255
    cropped = np.asarray(lite0.crop(Image.fromarray(drawn)))[..., 0] > 127
    assert bv.mask_iou(cropped, strokes.labels == 0) > 0.95


def test_strokes_painted_on_a_copy_of_the_picture_or_smaller(lite0: bv.Backbone, tmp_path: Path) -> None:
    """Painted over the photo itself (the photo's pixels are unpainted), or on a half-size copy."""
    cat = sample("cat")
    copy = np.asarray(cat).copy()
    copy[100:160, 200:260] = RED
    copy[250:280, 10:440] = BLUE
    over = heads.read_strokes(_png(copy, tmp_path / "over.png"), cat, lite0.preprocessing)
    assert over.colours == (RED, BLUE) and over.ignored == 0
    clean = np.zeros((300, 451, 4), np.uint8)
    clean[100:160, 200:260] = (*RED, 255)
    clean[250:280, 10:440] = (*BLUE, 255)
    expected = heads.read_strokes(_png(clean, tmp_path / "clean.png"), cat, lite0.preprocessing).labels
    assert np.array_equal(over.labels, expected)
    soft = clean.copy()
    soft[99, 200:260] = (240, 60, 50, 255)  # a soft edge near red joins red
    soft[161, 200:210] = (240, 180, 170, 255)  # a rare pale blend near no label is left out
    edged = heads.read_strokes(_png(soft, tmp_path / "soft.png"), cat, lite0.preprocessing)
    assert edged.colours == (RED, BLUE) and edged.pixels == (61 * 60, 30 * 430) and edged.ignored == 10
    half = Image.fromarray(clean).resize((226, 150), Image.Resampling.NEAREST)
    scaled = heads.read_strokes(_png(np.asarray(half), tmp_path / "half.png"), cat, lite0.preprocessing)
    assert scaled.painted_on == "scaled image"
    assert bv.mask_iou(scaled.labels == 0, expected == 0) > 0.9


def test_segment_bad_strokes_are_explained(run: Run, tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    sample("cat").save(image)
    blank = np.zeros((300, 451, 4), np.uint8)

    def strokes(*colours: tuple[int, int, int], size: tuple[int, int] = (300, 451)) -> Path:
        rgba = np.zeros((*size, 4), np.uint8)
        for k, colour in enumerate(colours):
            rgba[20 + 40 * k : 50 + 40 * k, 20:120] = (*colour, 255)
        return _png(rgba, tmp_path / f"strokes-{len(colours)}-{size[0]}.png")

    segment = ("segment", image, "--strokes")
    edge = np.zeros((300, 451, 4), np.uint8)
    edge[100:200, 150:300] = (*RED, 255)
    edge[100:200, 0:60] = (*BLUE, 255)  # the crop keeps picture columns 94..356 only
    _user_error(
        run(*segment, _png(edge, tmp_path / "edge.png")), "'blue' (blue (#1e50e6))", "outside", "middle"
    )
    _user_error(run(*segment, _png(blank, tmp_path / "blank.png")), "Nothing is painted")
    _user_error(run(*segment, strokes(RED)), "Only one colour", "red (#e61e1e)", "second colour")
    _user_error(
        run(*segment, strokes(RED, BLUE, GREEN, ORANGE, PURPLE)),
        "5 colours",
        "at most 4",
        "solid colour",
    )
    _user_error(run(*segment, strokes(RED, BLUE, size=(100, 50))), "50x100", "451x300", "224x224")
    _user_error(run(*segment, strokes(RED, BLUE), "--labels", "cat"), "1 label names", "2 colours", "red")
    _user_error(run(*segment, strokes(RED, BLUE), "--labels", "cat=red,dog=red"), "'cat'", "'dog'")
    _user_error(run(*segment, strokes(RED, BLUE), "--labels", "cat=reddish,dog=blue"), "'reddish'", "#rrggbb")
    _user_error(run(*segment, strokes(RED, BLUE), "--levels", "9"), "no stage 9")
    _user_error(run(*segment, tmp_path / "missing.png"))


# --------------------------------------------------------------------------------------------------- detect


@pytest.fixture(scope="module")
def detected(run: Run, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    """A detector trained on one box around the cat's left eye, pasted onto the other samples."""
    out = tmp_path_factory.mktemp("detect") / "found.png"
    example = f"{SAMPLES / 'cat.jpg'}:{','.join(map(str, EYE))}"
    argv = (
        "detect",
        "--example",
        example,
        "--paste-onto-samples",
        "--on",
        SAMPLES / "cat.jpg",
        "--on",
        SAMPLES / "coffee.jpg",
    )
    code, text, err = run(*argv, "--json", "--out", out)
    assert code == 0, err
    return json.loads(text), err, out


def test_detect_finds_the_eye_it_was_shown(detected: tuple[dict, str, Path]) -> None:
    table, _, _ = detected
    cat, coffee = table["found"]
    best = cat["boxes"][0]
    assert bv.box_iou(tuple(best["box"]), EYE) >= 0.5, best  # measured 0.87
    assert best["score"] >= 0.3


def test_detect_trains_on_the_example_and_its_pastes(
    detected: tuple[dict, str, Path], lite0: bv.Backbone
) -> None:
    table, err, _ = detected
    samples = [s.name for s in list_samples()]
    pasted = [e["picture"] for e in table["examples"][1:]]
    assert table["examples"][0]["boxes"] == [list(EYE)] and len(pasted) >= 5
    assert all(p.startswith("cat.jpg pasted onto ") for p in pasted) and not any(
        p.endswith(" cat") for p in pasted
    )
    assert sorted(p.rsplit(" ", 1)[1] for p in pasted) == sorted(set(samples) - {"cat"})
    stride16 = next(s for s in lite0.spec.stages if s.stride == 16)
    assert (table["stage"], table["stride"], table["crop"]) == (stride16.index, 16, [224, 224])
    assert table["why"].startswith(f"Stage {stride16.index} ")
    assert "224x224 crop" in err and "train [" in err and err.rstrip().splitlines()[-2].endswith("307/307 steps")


def test_detect_writes_the_first_picture_with_its_boxes(
    detected: tuple[dict, str, Path], lite0: bv.Backbone
) -> None:
    _, _, out = detected
    with Image.open(out) as picture:
        drawn = np.asarray(picture.convert("RGB"), np.int16)
    crop = np.asarray(lite0.crop(sample("cat")), np.int16)
    assert drawn.shape == crop.shape
    changed = np.abs(drawn - crop).max(axis=-1) > 0
    ys, xs = np.nonzero(changed)
    # Only the box's outline and its score label are drawn, around the eye.
    assert changed.mean() < 0.15 and bv.box_iou((xs.min(), ys.min(), xs.max(), ys.max()), EYE) > 0.4


def test_the_training_set_pastes_onto_every_other_sample(lite0: bv.Backbone) -> None:
    cat = sample("cat")
    made = heads.training_set(lite0, [(str(SAMPLES / "cat.jpg"), cat, [EYE])], paste=True, seed=4)
    others = [s for s in list_samples() if s.name != "cat"]
    pasted = bv.paste_examples(lite0, cat, [EYE], [bv.load_image(s.path) for s in others], seed=4)
    assert made[0][1] is cat and made[0][2] == [EYE] and len(made) == len(pasted)
    for (name, picture, boxes), (expected, expected_boxes), other in zip(
        made[1:], pasted[1:], others, strict=True
    ):
        assert name == f"cat.jpg pasted onto {other.name}" and boxes == expected_boxes
        assert np.array_equal(np.asarray(picture), np.asarray(expected))


def test_example_text_is_parsed() -> None:
    assert heads.parse_example("cat.jpg:28,50,104,118") == ("cat.jpg", [(28, 50, 104, 118)])
    assert heads.parse_example("C:/pics/cat.jpg:1,2,30,40:5, 6 ,70,80") == (
        "C:/pics/cat.jpg",
        [(1, 2, 30, 40), (5, 6, 70, 80)],
    )


def test_detect_bad_inputs_are_explained(run: Run) -> None:
    cat = SAMPLES / "cat.jpg"
    on = ("--on", cat)
    _user_error(
        run("detect", "--example", f"{cat}:28,50,104", *on), "four whole numbers", "IMAGE:x0,y0,x1,y1"
    )
    _user_error(run("detect", "--example", f"{cat}:28,50,1o4,118", *on), "four whole numbers")
    _user_error(run("detect", "--example", str(cat), *on), "has no box", "IMAGE:x0,y0,x1,y1")
    _user_error(run("detect", "--example", f"{cat}:0,0,300,300", *on, "--steps", "1"), "outside", "224")
    _user_error(run("detect", "--example", f"{cat}:50,50,20,90", *on, "--steps", "1"), "no width")
    _user_error(
        run("detect", "--example", f"{cat}:28,50,104,118", *on, "--stage", "9", "--steps", "1"),
        "stage 9",
    )
    _user_error(run("detect", "--example", "nowhere.jpg:28,50,104,118", *on))
    _user_error(
        run("detect", "--example", f"{cat}:28,50,104,118", *on, "--steps", "1", "--threshold", "1"),
        "threshold",
    )
    with pytest.raises(SystemExit) as exit_:
        main(["detect", "--on", str(cat)])
    assert exit_.value.code == 2
