"""torchvision's detectors and segmenters on our backbones: specs, loading, running, the backbone inside.

No internet: every model is built untrained (once each, a small picture, one thread); the weights path is
exercised against the loopback server with checkpoints made here, saved under a name that carries their
own SHA-256 prefix, as torchvision's files do.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import re
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from weights_server import WeightsServer, leftovers

import backbone_viz as bv
from backbone_viz.dense import specs as dense_specs
from backbone_viz.dense.inside import map_to_classifier, stage_layers
from backbone_viz.dense.models import model_input
from backbone_viz.errors import WeightsError
from backbone_viz.files import weights
from tests.conftest import ROOT, model_left_alone, sample

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = [s.name for s in bv.list_dense()]
KINDS = {
    "ssd300_vgg16": "detector",
    "fasterrcnn_resnet50_fpn": "detector",
    "retinanet_resnet50_fpn": "detector",
    "fcos_resnet50_fpn": "detector",
    "maskrcnn_resnet50_fpn": "instance segmenter",
    "deeplabv3_resnet50": "semantic segmenter",
    "fcn_resnet50": "semantic segmenter",
    "deeplabv3_resnet101": "semantic segmenter",
    "fcn_resnet101": "semantic segmenter",
}


def memory_budget_bytes() -> int:
    """A class server replica's memory limit, as docs/kubernetes.md sets it (``limits: {memory: 4Gi}``)."""
    text = (ROOT / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    match = re.search(r"limits:\s*\{\s*memory:\s*(\d+)Gi\s*\}", text)
    assert match, "docs/kubernetes.md no longer states a replica's memory limit"
    return int(match.group(1)) * 2**30


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return sample("cat").resize((192, 160))


@pytest.fixture(scope="module", params=NAMES)
def dense(request: pytest.FixtureRequest) -> Iterator[bv.DenseModel]:
    """Each dense model built untrained once; pytest runs every test of one model before building the next,
    so one model (and its activations) at a time is in memory."""
    model = bv.load_dense(request.param, "untrained")
    yield model
    del model
    gc.collect()


# ------------------------------------------------------------------------------------------- the specs


def test_the_listed_models_and_their_kinds() -> None:
    assert {s.name: s.kind for s in bv.list_dense()} == KINDS
    assert [s.name for s in bv.list_dense(backbone="vgg16")] == ["ssd300_vgg16"]
    assert [s.name for s in bv.list_dense(backbone="resnet101")] == ["deeplabv3_resnet101", "fcn_resnet101"]
    with pytest.raises(ValueError, match="choose one of: ssd300_vgg16"):
        bv.get_dense_spec("yolo")


@pytest.mark.parametrize("name", NAMES)
def test_spec_agrees_with_torchvisions_weights_entry(name: str) -> None:
    spec = bv.get_dense_spec(name)
    entry = spec.weights()
    assert spec.weights_file.url == entry.url and entry.url.endswith("/" + spec.weights_file.filename)
    assert spec.weights_file.sha256_prefix in spec.weights_file.filename
    assert abs(spec.weights_file.size_bytes - entry.meta["_file_size"] * 2**20) < 1024
    assert len(spec.categories) == {"COCO": 91, "VOC": 21}[spec.label_set]
    assert spec.categories[0] == "__background__"
    enum_name, member = spec.start_enum.split(".")
    start_entry = getattr(getattr(torchvision.models, enum_name), member)
    assert spec.start_file.url == start_entry.url
    assert abs(spec.start_file.size_bytes - start_entry.meta["_file_size"] * 2**20) < 1024
    assert bv.get_spec(spec.backbone).title in spec.full_title


def test_start_weights_are_v1_not_the_apps_v2() -> None:
    """The detectors started from ResNet's V1 ImageNet weights (torchvision's weights_backbone default);
    the app's classifiers load V2 (and VGG-16's classification file), so the comparison needs the V1 file."""
    for spec in bv.list_dense():
        assert spec.start_file != bv.get_spec(spec.backbone).weights_file
    assert bv.get_dense_spec("fasterrcnn_resnet50_fpn").start_file.filename == "resnet50-0676ba61.pth"
    assert bv.get_dense_spec("fcn_resnet101").start_file.filename == "resnet101-63fe2227.pth"
    assert bv.get_dense_spec("ssd300_vgg16").start_file.filename == "vgg16_features-amdegroot-88682ab5.pth"
    import inspect

    from torchvision.models import detection

    for builder in (detection.fasterrcnn_resnet50_fpn, detection.retinanet_resnet50_fpn):
        default = inspect.signature(builder).parameters["weights_backbone"].default
        assert default == torchvision.models.ResNet50_Weights.IMAGENET1K_V1


def test_the_weights_tables_list_every_dense_file_apart_from_the_backbones() -> None:
    table = weights.DENSE_WEIGHTS
    assert list(table)[: len(NAMES)] == NAMES
    assert {"resnet50.IMAGENET1K_V1", "resnet101.IMAGENET1K_V1", "vgg16.IMAGENET1K_FEATURES"} <= set(table)
    assert not set(table) & set(weights.TORCHVISION_WEIGHTS)


# ------------------------------------------------------------------------------------------- each model


def test_builds_untrained_and_runs(dense: bv.DenseModel, picture: Image.Image) -> None:
    check = model_left_alone(dense.model)
    result = bv.detect_objects(dense, picture, threshold=0.0)
    check()
    assert not dense.trained and not result.trained and dense.weights == "untrained"
    assert result.kind == KINDS[dense.name] and result.model == dense.name
    assert result.image_size == (192, 160)
    assert min(result.input_size) == dense.spec.input_size
    assert len(result.categories) == len(dense.spec.categories)
    n = len(result)
    assert result.boxes.shape == (n, 4) and result.scores.shape == (n,) and result.label_ids.shape == (n,)
    assert set(result.labels) <= set(result.categories)
    if result.kind == "semantic segmenter":
        assert n == 0 and result.masks is None
        assert result.class_map.shape == (160, 192) and result.class_map.dtype == np.uint8
        assert sum(f for _, _, f in result.legend) == pytest.approx(1.0)
        assert {result.categories[i] for i, _, _ in result.legend} == {name for _, name, _ in result.legend}
    else:
        assert result.class_map is None and result.legend == ()
        # (An untrained RetinaNet or FCOS may find nothing at all: their heads start at a 1% prior, under
        # torchvision's own 5% floor.)
        assert (result.boxes[:, [0, 2]] >= -1e-3).all() and (result.boxes[:, [0, 2]] <= 192 + 1e-3).all()
        assert (result.boxes[:, [1, 3]] >= -1e-3).all() and (result.boxes[:, [1, 3]] <= 160 + 1e-3).all()
        assert (np.diff(result.scores) <= 1e-6).all(), "best first"
        if result.kind == "instance segmenter":
            assert result.masks.shape == (n, 160, 192) and result.masks.dtype == bool
        else:
            assert result.masks is None
        assert len(bv.detect_objects(dense, picture, threshold=1.0)) == 0


#: Builds every dense model untrained, one after another as a replica holds them (one at a time), runs it
#: on a small picture and prints the process's peak RSS in bytes.
_ONE_AT_A_TIME = """
import gc, sys
import torch
torch.set_num_threads(1)
import backbone_viz as bv
from PIL import Image
picture = Image.open(sys.argv[1]).convert("RGB").resize((192, 160))
for name in sys.argv[2:]:
    dense = bv.load_dense(name, "untrained")
    bv.detect_objects(dense, picture, threshold=0.0)
    del dense
    gc.collect()
    # VmHWM is this process's own high-water mark: getrusage's ru_maxrss would carry over the RSS of the
    # process that forked it (Linux keeps it across exec), here the whole test suite's.
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(name, peak * 1024, flush=True)
"""


def test_every_model_runs_within_a_replicas_memory_budget(record_property: pytest.RecordProperty) -> None:
    """Measured in a fresh process: this test process's own peak holds whatever the suite ran before."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc to read a process's peak memory")
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _ONE_AT_A_TIME, str(ROOT / "assets" / "samples" / "cat.jpg"), *NAMES],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    peaks = {name: int(peak) for name, peak in (line.split() for line in done.stdout.split("\n") if line)}
    assert list(peaks) == NAMES
    record_property("peak_rss_mb", {name: round(peak / 2**20) for name, peak in peaks.items()})
    worst = max(peaks.values())
    assert worst < memory_budget_bytes(), f"peak RSS {worst / 2**30:.2f} GiB: {peaks}"


def test_stage_maps_have_the_classifiers_channels_and_strides(
    dense: bv.DenseModel, picture: Image.Image
) -> None:
    check = model_left_alone(dense.model)
    maps = bv.dense_stage_maps(dense, picture)
    check()
    backbone = bv.get_spec(dense.spec.backbone)
    assert list(maps) == list(stage_layers(dense.spec)) == [i.module for i in backbone.feature_info]
    height = model_input(dense, picture).shape[-2]
    for info in backbone.feature_info:
        c, h, _ = maps[info.module].shape
        assert c == info.num_chs
        dilated = any(info.module.startswith(d + ".") for d in dense.spec.dilated)
        expected = 8 if dilated else info.reduction
        assert height / h == pytest.approx(expected, rel=0.1), info.module


def test_backbone_state_loads_into_torchvisions_classifier(dense: bv.DenseModel) -> None:
    state = bv.backbone_state(dense)
    classifier = getattr(torchvision.models, dense.spec.backbone)()
    result = classifier.load_state_dict(state, strict=False)
    head = "fc." if dense.spec.backbone.startswith("resnet") else "classifier."
    assert result.unexpected_keys == []
    assert result.missing_keys and all(k.startswith(head) for k in result.missing_keys)
    # Every weight of the classifier's backbone comes from the dense model, value for value.
    expected = {k for k in classifier.state_dict() if not k.startswith(head)}
    assert set(state) == expected
    by_dense = dict(dense.model.state_dict())
    for classifier_name, dense_name in dense.spec.trunk:
        for key, value in classifier.get_submodule(classifier_name).state_dict().items():
            assert torch.equal(value, by_dense[f"{dense_name}.{key}"]), f"{classifier_name}.{key}"


def test_the_trunk_is_where_the_spec_says(dense: bv.DenseModel) -> None:
    """Running the trunk module by module is the dense model's own backbone (no hooks needed)."""
    spec = dense.spec
    x = torch.randn(1, 3, 96, 128)
    with torch.inference_mode():
        if spec.kind == "semantic segmenter":
            own = dense.model.backbone(x)["out"]  # layer4
        elif spec.name == "ssd300_vgg16":
            body = dense.model.backbone
            own = body.extra[0][:7](body.features(x))  # conv5_3, before SSD's pool5
        else:
            own = dense.model.backbone.body(x)[str(len(dense.model.backbone.body.return_layers) - 1)]
        last = stage_layers(spec)[-1]
        from backbone_viz.dense.inside import _dense_modules, _run

        mine = _run(_dense_modules(dense), x, [last])[last]
    torch.testing.assert_close(mine, own)


def test_the_neck_reads_the_layers_the_spec_says(dense: bv.DenseModel) -> None:
    spec = dense.spec
    stages = {n.split(".")[0] for n in spec.neck_inputs}
    if spec.name == "ssd300_vgg16":
        assert len(dense.model.backbone.features) == 23  # ends with conv4_3's ReLU, features.22
    elif spec.kind == "semantic segmenter":
        # The head reads "out", layer4; layer3's "aux" map fed the training-only head, dropped at load.
        assert stages == {"layer4"} and dense.model.backbone.return_layers["layer4"] == "out"
        assert dense.model.aux_classifier is None
    else:
        assert set(dense.model.backbone.body.return_layers) == stages
        # Faster and Mask R-CNN read C2-C5; RetinaNet and FCOS skip C2 (too many anchors at stride 4).
        assert ("layer1" in stages) == spec.name.startswith(("fasterrcnn", "maskrcnn"))


def test_frozen_stages_follow_the_training_recipe(dense: bv.DenseModel) -> None:
    frozen = [s.index for s in bv.frozen_stages(dense)]
    spec = dense.spec
    if spec.name == "ssd300_vgg16":
        assert frozen == [1]  # conv1_1 and conv1_2: trainable_backbone_layers=4 of 5
    elif spec.kind == "semantic segmenter":
        assert frozen == [] and not spec.frozen_batch_norm
        return  # trained with every backbone parameter free
    else:
        assert frozen == [1, 2] and spec.frozen_batch_norm  # conv1 and layer1: 3 of 5 train
    # The same parameters torchvision's own extractors freeze with the builders' defaults (an untrained
    # build trains everything, so ask the extractor directly; private, but it is the recipe itself).
    from torchvision.models.detection import backbone_utils, ssd

    if spec.name == "ssd300_vgg16":
        body, prefix = ssd._vgg_extractor(torchvision.models.vgg16(), False, 4), "features."
    else:
        body, prefix = backbone_utils._resnet_fpn_extractor(torchvision.models.resnet50(), 3).body, ""
    for name, param in body.named_parameters():
        module = prefix + name.rsplit(".", 1)[0].removeprefix("features.")
        if name.startswith(("extra", "scale_weight")):
            continue  # SSD's own layers, past conv4_3
        assert spec.is_frozen(module) == (not param.requires_grad), name


# ------------------------------------------------------------------------------------------- CKA


def test_linear_cka_by_hand() -> None:
    # One feature each: linear CKA is the squared correlation. Centred x = (-1, 0, 1), y = (0, -1, 1):
    # (y.x)^2 / (|x|^2 |y|^2) = 1 / (2 * 2).
    assert bv.linear_cka(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [0.0], [2.0]])) == pytest.approx(
        0.25
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    assert bv.linear_cka(x, x) == pytest.approx(1.0)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert bv.linear_cka(x, x @ q) == pytest.approx(1.0)  # a rotation
    assert bv.linear_cka(x, 7.5 * x + 3.0) == pytest.approx(1.0)  # scale and shift
    y = rng.normal(size=(200, 8))
    assert bv.linear_cka(x, y) < 0.2  # unrelated features
    # Half of 16 uncorrelated, equally strong features: ||X8'X||^2 / (||X'X|| ||X8'X8||) = 8 / (4 * sqrt(8)).
    white = np.linalg.qr(x - x.mean(0))[0]  # exactly uncorrelated, equal-variance columns
    assert bv.linear_cka(white, white[:, :8]) == pytest.approx(1 / np.sqrt(2))
    assert np.isnan(bv.linear_cka(np.ones((5, 2)), x[:5]))
    with pytest.raises(ValueError, match="same n"):
        bv.linear_cka(x, x[:10])


# ------------------------------------------------------------------------------------------- weights path


def _bytes(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def made_here() -> dict[str, bytes]:
    """Checkpoints made here, as a real pair would be: "start" ImageNet weights (a ResNet-50 of another
    seed) and an FCOS whose backbone started from them, kept conv1 and layer1 and changed layer2-4. As in
    the trained file, the frozen batch norms have no ``num_batches_tracked``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        start = torchvision.models.resnet50().state_dict()
        torch.manual_seed(2)
        fcos = bv.get_dense_spec("fcos_resnet50_fpn").build().state_dict()
        for key, value in start.items():
            target = "backbone.body." + key
            if target in fcos:
                fcos[target] = value.clone()
                if (
                    key.startswith(("layer2", "layer3", "layer4"))
                    and value.is_floating_point()
                    and value.ndim == 4
                ):
                    fcos[target] += 0.3 * value.std() * torch.randn_like(value)
    fcos = {
        k: v
        for k, v in fcos.items()
        if not (k.startswith("backbone.body.") and k.endswith("num_batches_tracked"))
    }
    return {"start": _bytes(start), "fcos": _bytes(fcos)}


@pytest.fixture
def served(
    server: WeightsServer, made_here: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, _own_cache: Path
) -> Iterator[tuple[dense_specs.DenseSpec, WeightsServer]]:
    """A test FCOS whose weights file and start weights are the checkpoints made here, served on loopback
    under torchvision-style names carrying their own SHA-256 prefix; the mirror points at the server."""
    fcos_file = server.add(made_here["fcos"], "fcos_resnet50_fpn_coco")
    start_file = server.add(made_here["start"], "resnet50")
    monkeypatch.setitem(
        dense_specs.START_WEIGHTS,
        "test.IMAGENET1K_V1",
        ("resnet50", "ResNet50_Weights.IMAGENET1K_V1", start_file),
    )
    spec = dataclasses.replace(
        bv.get_dense_spec("fcos_resnet50_fpn"),
        name="test_fcos",
        weights_file=fcos_file,
        start_weights="test.IMAGENET1K_V1",
    )
    dense_specs.register_dense(spec)
    monkeypatch.setenv(weights.MIRROR_ENV, server.url + "/ok")
    try:
        yield spec, server
    finally:
        dense_specs.unregister_dense(spec.name)


def test_pretrained_downloads_from_the_mirror_verifies_and_runs(
    served: tuple[dense_specs.DenseSpec, WeightsServer], made_here: dict[str, bytes], _own_cache: Path
) -> None:
    spec, server = served
    seen: list[tuple[int, int | None]] = []
    dense = bv.load_dense(spec.name, "pretrained", progress=lambda d, t: seen.append((d, t)))
    assert dense.trained and dense.weights == "pretrained"
    assert server.count(spec.weights_file.filename) == 1
    assert seen[-1] == (len(made_here["fcos"]),) * 2
    assert (_own_cache / spec.weights_file.filename).read_bytes() == made_here["fcos"]
    # The right keys and shapes: every tensor of the file is in the model, value for value.
    state = torch.load(io.BytesIO(made_here["fcos"]), weights_only=True)
    model_state = dense.model.state_dict()
    assert all(torch.equal(model_state[k], v) for k, v in state.items())
    check = model_left_alone(dense.model)
    result = bv.detect_objects(dense, sample("cat"), threshold=0.0)
    assert result.trained and result.kind == "detector" and len(result) > 0

    # Two sessions at once get what one gets alone: nothing is kept between calls.
    picture = sample("cat").resize((200, 150))
    alone = bv.detect_objects(dense, picture, threshold=0.0)
    together: list[bv.DenseResult] = []
    threads = [
        threading.Thread(target=lambda: together.append(bv.detect_objects(dense, picture, threshold=0.0)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for other in together:
        np.testing.assert_allclose(other.boxes, alone.boxes, atol=1e-3)
    check()

    # Again: from the cache, without any network.
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was used")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(urllib.request, "urlopen", refuse)
        bv.load_dense(spec.name, "pretrained")
    assert server.count(spec.weights_file.filename) == 1


def test_a_damaged_download_is_refused_and_nothing_is_kept(
    served: tuple[dense_specs.DenseSpec, WeightsServer], monkeypatch: pytest.MonkeyPatch, _own_cache: Path
) -> None:
    spec, server = served
    monkeypatch.setenv(weights.MIRROR_ENV, server.url + "/corrupt")
    with pytest.raises(WeightsError, match="SHA-256") as info:
        bv.load_dense(spec.name, "pretrained")
    message = str(info.value)
    assert spec.weights_file.filename in message and "weights fetch test_fcos" in message
    assert weights.describe_size(spec.weights_file.size_bytes) in message
    assert leftovers(_own_cache) == []


def test_offline_says_which_file_how_big_and_the_command(
    monkeypatch: pytest.MonkeyPatch, _own_cache: Path
) -> None:
    monkeypatch.setenv(weights.MIRROR_ENV, "http://127.0.0.1:9/")
    with pytest.raises(WeightsError) as info:
        bv.load_dense("maskrcnn_resnet50_fpn", "pretrained")
    message = str(info.value)
    assert "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth (170 MB)" in message
    assert "python -m backbone_viz weights fetch maskrcnn_resnet50_fpn" in message
    assert "offline" in message


def test_import_from_a_usb_folder_then_load_offline(
    served: tuple[dense_specs.DenseSpec, WeightsServer],
    made_here: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    _own_cache: Path,
) -> None:
    spec, server = served
    monkeypatch.setattr(weights, "DENSE_WEIGHTS", {spec.name: spec.weights_file})
    usb = tmp_path / "usb" / "detectors"
    usb.mkdir(parents=True)
    (usb / spec.weights_file.filename).write_bytes(made_here["fcos"])
    report = weights.import_folder(tmp_path / "usb")
    assert report.imported == (spec.weights_file.filename,) and report.ok
    monkeypatch.setenv(weights.MIRROR_ENV, "http://127.0.0.1:9/")
    assert bv.load_dense(spec.name, "pretrained").trained
    assert server.count(spec.weights_file.filename) == 0


def test_a_checkpoint_that_does_not_fit_is_rejected_with_what_is_wrong(
    made_here: dict[str, bytes], tmp_path: Path
) -> None:
    path = tmp_path / "resnet50-start.pth"
    path.write_bytes(made_here["start"])  # a classifier, not a detector
    with pytest.raises(
        WeightsError, match=r"does not fit FCOS on ResNet-50: missing: .*not in this model: conv1"
    ):
        bv.load_dense("fcos_resnet50_fpn", path)
    state = torch.load(io.BytesIO(made_here["fcos"]), weights_only=True)
    state["head.classification_head.cls_logits.weight"] = state["head.classification_head.cls_logits.weight"][
        :21
    ]
    path.write_bytes(_bytes(state))
    with pytest.raises(WeightsError, match=r"wrong shape: head.classification_head.cls_logits.weight \(21,"):
        bv.load_dense("fcos_resnet50_fpn", path)


def test_a_start_file_that_does_not_fit_names_the_keys_and_the_file_to_use(_own_cache: Path) -> None:
    spec = bv.get_dense_spec("fcos_resnet50_fpn")
    state = {"conv1.weight": torch.zeros(64, 3, 5, 5), "fc.weight": torch.zeros(10, 2048)}  # head: not read
    _own_cache.mkdir(parents=True, exist_ok=True)
    (_own_cache / spec.start_file.filename).write_bytes(_bytes(state))
    with pytest.raises(WeightsError) as raised:
        bv.classifier_trunk(spec, "start")
    message = raised.value.message
    assert message.startswith(f"{spec.start_file.filename} does not fit ResNet-50: missing: bn1.weight, ")
    assert "wrong shape: conv1.weight (64, 3, 5, 5) (needs (64, 3, 7, 7))" in message
    assert "fc." not in message and "not in this model" not in message
    assert raised.value.hint == f"Use {spec.start_file.filename}."


def test_the_comparison_with_the_start_weights(
    served: tuple[dense_specs.DenseSpec, WeightsServer], made_here: dict[str, bytes]
) -> None:
    """Kept stages are exactly the start weights (CKA 1); changed stages are less alike; the untrained
    baseline is lower still at every stage."""
    spec, server = served
    dense = bv.load_dense(spec.name, "pretrained")
    check = model_left_alone(dense.model)
    start = bv.classifier_trunk(dense, "start")
    assert start.started_from and start.weights == spec.start_file.filename and "IMAGENET1K_V1" in start.note
    pictures = [sample(n) for n in ("cat", "coffee", "flower")]
    comparison = bv.compare_backbones(dense, pictures, classifier=start, size=128)
    check()
    assert comparison.started_from and comparison.pictures == 3
    assert [s.label for s in comparison.stages] == ["conv1", "layer1.2", "layer2.3", "layer3.5", "layer4.2"]
    assert [s.frozen for s in comparison.stages] == [True, True, False, False, False]
    for s in comparison.stages:
        if s.frozen:
            assert s.max_weight_change == 0.0 and s.cka == pytest.approx(1.0, abs=1e-6)
        else:
            assert s.max_weight_change > 0 and s.cka < 1 - 1e-4
        assert s.baseline_cka < s.cka, s
    # With the classifier itself the CKA is 1 at every stage (the same maps).
    same = bv.compare_backbones(dense, pictures[:1], classifier=start, baseline=start, size=96)
    assert all(s.baseline_cka == pytest.approx(s.cka) for s in same.stages)
    with pytest.raises(ValueError, match="built for fcos_resnet50_fpn"):
        bv.compare_backbones(
            dense, pictures, classifier=bv.classifier_trunk("fcos_resnet50_fpn", "untrained")
        )


def test_our_load_computes_what_torchvisions_trained_build_computes(
    monkeypatch: pytest.MonkeyPatch, _own_cache: Path
) -> None:
    """torchvision's trained RetinaNet has FrozenBatchNorm2d with eps 0 (overwrite_eps); ours keeps plain
    batch norms in eval mode with eps 0. With small variances, where eps would show, both agree."""
    spec = bv.get_dense_spec("retinanet_resnet50_fpn")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        state = spec.build().state_dict()
        for key in state:
            if key.startswith("backbone.body.") and key.endswith("running_var"):
                # Variances of the order of eps (1e-5), with scales that keep activations near 1: eps 0
                # and eps 1e-5 then differ by up to 30% at every batch norm.
                var = torch.rand_like(state[key]) * 1.5e-5 + 5e-6
                state[key] = var
                state[key.replace("running_var", "weight")] = var.sqrt()
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    _own_cache.mkdir(parents=True)
    torch.save(
        state, _own_cache / spec.weights_file.filename
    )  # under the real name: torchvision finds it too
    monkeypatch.setenv(weights.MIRROR_ENV, "http://127.0.0.1:9/")
    ours = bv.load_dense(spec.name, "pretrained")
    theirs = torchvision.models.detection.retinanet_resnet50_fpn(
        weights=spec.weights(), min_size=spec.input_size, max_size=dict(spec.build_kwargs)["max_size"]
    ).eval()
    assert isinstance(theirs.backbone.body.bn1, torchvision.ops.misc.FrozenBatchNorm2d)
    x = model_input(ours, sample("cat").resize((160, 128)))
    with torch.inference_mode():
        mine = bv.dense_stage_maps(ours, sample("cat").resize((160, 128)))["layer4.2"]
        own = theirs.backbone.body(x)["2"][0].numpy()
    assert np.isfinite(own).all() and np.abs(own).max() > 0
    np.testing.assert_allclose(mine, own, rtol=1e-3, atol=1e-3 * float(np.abs(own).max()))


def test_dense_state_maps_a_raw_checkpoint() -> None:
    """The mapping applies to a file's state dict as well as a model's: an SSD checkpoint's
    ``backbone.features.0-22`` and ``backbone.extra.0.1/3/5`` are VGG-16's 13 convolutions."""
    spec = bv.get_dense_spec("ssd300_vgg16")
    fake = {
        "backbone.features.0.weight": torch.zeros(1),
        "backbone.features.21.bias": torch.zeros(1),
        "backbone.extra.0.5.weight": torch.zeros(1),
        "backbone.extra.1.0.weight": torch.zeros(1),  # SSD's own extra block: not the classifier's
        "backbone.scale_weight": torch.zeros(1),
        "head.classification_head.module_list.0.weight": torch.zeros(1),
    }
    assert sorted(map_to_classifier(spec, fake)) == [
        "features.0.weight",
        "features.21.bias",
        "features.28.weight",
    ]


# ------------------------------------------------------------------------------------------- command line


def test_weights_commands_list_and_fetch_the_dense_files(
    served: tuple[dense_specs.DenseSpec, WeightsServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    _own_cache: Path,
) -> None:
    from backbone_viz.cli import weights as cli_weights

    spec, server = served
    assert cli_weights.main(["weights", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    for name in NAMES:
        wf = bv.get_dense_spec(name).weights_file
        assert "missing" in lines[name] and weights.describe_size(wf.size_bytes) in lines[name]
    assert "vgg16_features-amdegroot-88682ab5.pth" in lines["vgg16.IMAGENET1K_FEATURES"]

    table = {spec.name: spec.weights_file, spec.start_weights: spec.start_file}
    monkeypatch.setattr(weights, "DENSE_WEIGHTS", table)
    assert cli_weights.main(["weights", "fetch", "--dense"]) == 0
    out = capsys.readouterr().out
    total = weights.describe_size(spec.weights_file.size_bytes + spec.start_file.size_bytes)
    assert out.splitlines()[0] == f"2 files to fetch, {total} in all"  # the bill before the first byte
    size = weights.describe_size(spec.weights_file.size_bytes)
    assert f"test_fcos: fetching {spec.weights_file.filename} ({size}) from mirror" in out
    assert "test_fcos: ready, verified" in out and "test.IMAGENET1K_V1: ready, verified" in out
    assert cli_weights.main(["weights", "fetch", "test_fcos"]) == 0
    assert "test_fcos: already here" in capsys.readouterr().out
    assert server.count(spec.weights_file.filename) == 1


def test_analyze_with_a_detector_prints_and_draws(
    served: tuple[dense_specs.DenseSpec, WeightsServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from backbone_viz.cli import main

    out = tmp_path / "boxes.png"
    image = ROOT / "assets" / "samples" / "cat.jpg"
    assert (
        main(["analyze", str(image), "--detector", "test_fcos", "--threshold", "0", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\s*\d+\.\d\d%  .+  \(\d+, \d+\) to \(\d+, \d+\)", printed[0]), printed[0]
    assert printed[-1] == f"Picture written to {out}"
    with Image.open(out) as drawn, Image.open(image) as original:
        assert drawn.size == original.size


def test_analyze_with_a_detector_writes_where_it_looked(
    served: tuple[dense_specs.DenseSpec, WeightsServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from backbone_viz.cli import main

    out = tmp_path / "looked.png"
    image = ROOT / "assets" / "samples" / "cat.jpg"
    assert main(["analyze", str(image), "--detector", "test_fcos", "--threshold", "0", "--looked", str(out)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"EigenCAM from the 5 maps the heads read, together written to {out}. EigenCAM needs")
    with Image.open(out) as looked, Image.open(image) as original:
        scale = min(1.0, 512 / max(original.size))
        assert looked.size == (round(original.width * scale), round(original.height * scale))


def test_analyze_with_an_untrained_segmenter_says_it_is_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from backbone_viz.cli import main

    image = tmp_path / "small.png"
    sample("flower").resize((96, 80)).save(image)
    assert main(["analyze", str(image), "--detector", "fcn_resnet50", "--weights", "untrained"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "FCN on ResNet-50 is untrained: what follows is noise, not findings."
    assert all(line.endswith("(share of the picture's pixels)") for line in printed[1:])


def test_analyze_with_a_detector_offline_names_the_file_its_size_and_the_command(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "TORCH_HOME": str(tmp_path / "torch"),
        "BACKBONE_VIZ_WEIGHTS_MIRROR": "http://127.0.0.1:9/",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "backbone_viz", "analyze", str(ROOT / "assets/samples/cat.jpg"), "--detector", "ssd300_vgg16"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "ssd300_vgg16_coco-b556d3b4.pth (136 MB)" in proc.stderr
    assert "python -m backbone_viz weights fetch ssd300_vgg16" in proc.stderr
