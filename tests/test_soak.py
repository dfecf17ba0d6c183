"""Memory soak: repeated analyses over several shared backbones must not grow resident memory.

A smaller count than ``bench/engine_load.py`` (which runs 200): 60 analyses over three backbones.
"""

from __future__ import annotations

import gc

import backbone_viz as bv
from backbone_viz.files.samples import list_samples
from bench.engine_load import rss_mb


def test_resident_memory_stays_flat_over_many_analyses(lite0: bv.Backbone) -> None:
    models = [lite0] + [bv.load_backbone(n, weights="untrained", device="cpu") for n in ("resnet50", "googlenet")]
    images = [bv.load_image(s.path) for s in list_samples()]
    for i in range(2 * len(models) * 2):  # warm-up: the allocator's pools reach their steady size
        bv.analyze(models[i % len(models)], images[i % len(images)])
    gc.collect()
    start = rss_mb()
    for i in range(60):
        res = bv.analyze(models[i % len(models)], images[i % len(images)], target=(i * 37) % 1000)
        last = res.layers[-1].name
        assert res.target.index == (i * 37) % 1000
        assert res.gradcam[last].shape == res.activations[last].shape[1:]
    del res
    gc.collect()
    growth = rss_mb() - start
    assert growth < 50, f"resident memory grew by {growth:.0f} MB over 60 analyses"
