"""How long faithfulness takes, and which maps are faithful on the sample pictures.

(a) Timing on the cat: a deletion plus an insertion curve of Grad-CAM at the last stage (target <= 5 s on
    EfficientNet-Lite0 on these 2 cores), at the default step and at RISE's 224 px per step; occlusion at
    its default patch and stride; ROAD at its default percentages; each beside the cost said beforehand.
(b) The README's table: on every sample picture with the backbone's pretrained weights, the deletion and
    insertion areas (RISE protocol, default step, black substrate) of every CAM method registered in
    ``backbone_viz.explain.cams.list_cams()`` at the last layer (through ``bv.cam_family`` when it exists,
    else ``bv.analyze(..., cam=name)``), Score-CAM when ``bv.score_cam`` exists (its top-k channels),
    occlusion's ``pixel_map``, and the random and Sobel baselines; per picture and mean, and which maps
    beat the random map on every picture (lower deletion AND higher insertion area). ``--substrate mean``
    deletes onto the preprocessing's mean colour (RISE's code) instead of black; ``--road`` adds each
    map's ROAD score ((mean LeRF - mean MoRF) / 2, higher is better) and which maps beat the random
    map's on every picture.

    python bench/faithfulness.py [--backbone efficientnet_lite0] [--threads 1] [--repeats 3] [--skip-table]
        [--skip-timing] [--score-cam-k 128] [--substrate black|mean] [--road]

One torch thread by default: what one session of the web app gets, and on 2 busy cores two threads
spin-wait for each other through many small passes (bench/featurevis.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backbone_viz as bv  # noqa: E402
from backbone_viz.explain import faithfulness as fa  # noqa: E402
from backbone_viz.explain import occlusion as oc  # noqa: E402
from backbone_viz.explain.cams import list_cams  # noqa: E402
from backbone_viz.files.samples import list_samples  # noqa: E402


def cam_maps(bb: bv.Backbone, image, layer: str) -> tuple[dict[str, np.ndarray], int]:
    """Every registered CAM method's map at ``layer`` for the top-1 class, and that class's index."""
    names = [m.name for m in list_cams()]
    if hasattr(bv, "cam_family"):
        family = bv.cam_family(bb, image, methods=names, layers=[layer])
        return {n: family.maps[n][layer] for n in names}, family.target.index
    maps, index = {}, None
    for n in names:
        res = bv.analyze(bb, image, cam=n)
        maps[n], index = res.gradcam[layer], res.target.index
    return maps, index


def timing(bb: bv.Backbone, layer: str, repeats: int) -> None:
    image = bv.load_image(next(s.path for s in list_samples() if s.name == "cat"))
    res = bv.analyze(bb, image)
    gradcam = res.gradcam[layer]
    cost = bv.curves_cost(bb)
    runs = [bv.deletion_insertion(bb, image, gradcam, res.target.index) for _ in range(repeats)]
    print(
        f"(a) timing on the cat, {bb.spec.title}, {torch.get_num_threads()} torch thread(s), "
        f"batch {oc.default_batch(bb)}, median of {repeats}"
    )
    print(
        f"  deletion + insertion, Grad-CAM at {layer}, step {fa.DEFAULT_STEP} px ({runs[0].passes} passes): "
        f"{statistics.median(r.ms for r in runs) / 1000:.2f} s (said before: {cost})"
    )
    rise = bv.deletion_insertion(bb, image, gradcam, res.target.index, step=224)
    print(
        f"  the same at RISE's 224 px per step ({rise.passes} passes): {rise.ms / 1000:.2f} s; areas "
        f"deletion {rise.deletion.auc:.3f} / insertion {rise.insertion.auc:.3f} against "
        f"{runs[0].deletion.auc:.3f} / {runs[0].insertion.auc:.3f} at {fa.DEFAULT_STEP} px"
    )
    cost = bv.occlusion_cost(bb)
    occ = [bv.occlusion(bb, image) for _ in range(repeats)]
    print(
        f"  occlusion, patch {oc.DEFAULT_PATCH} px, stride {oc.DEFAULT_STRIDE} px ({occ[0].passes} passes): "
        f"{statistics.median(o.ms for o in occ) / 1000:.2f} s (said before: {cost})"
    )
    road = [bv.road(bb, image, gradcam, res.target.index) for _ in range(repeats)]
    print(
        f"  ROAD, Grad-CAM, {len(fa.ROAD_PERCENTAGES)} percentages x MoRF/LeRF ({road[0].passes} passes, "
        f"imputation included): {statistics.median(r.ms for r in road) / 1000:.2f} s; "
        f"MoRF mean {road[0].morf_mean:.3f}, LeRF mean {road[0].lerf_mean:.3f}"
    )


def table(bb: bv.Backbone, layer: str, score_cam_k: int, substrate: str, with_road: bool) -> None:
    samples = list_samples()
    rows: dict[str, list[tuple[float, float]]] = {}
    beats: dict[str, int] = {}
    road: dict[str, list[float]] = {}
    start = time.perf_counter()
    print(
        f"\n(b) deletion / insertion areas, {bb.spec.title} ({bb.weights}), maps at {layer}, step "
        f"{fa.DEFAULT_STEP} px, {substrate} substrate, target = top-1 class"
    )
    for s in samples:
        image = bv.load_image(s.path)
        maps, index = cam_maps(bb, image, layer)
        if score_cam_k and hasattr(bv, "score_cam"):
            maps[f"scorecam(k={score_cam_k})"] = bv.score_cam(
                bb, image, index, layer=layer, k=score_cam_k
            ).map
        maps["occlusion"] = bv.occlusion(bb, image, index).pixel_map
        ranking = bv.rank_maps(bb, image, maps, index, substrate=substrate)
        if with_road:
            every = {**maps, fa.RANDOM: fa.random_map(seed=0), fa.SOBEL: bv.sobel_map(bb.crop(image))}
            for n, m in every.items():
                road.setdefault(n, []).append(bv.road(bb, image, m, index).combined)
        for r in ranking.rows:
            rows.setdefault(r.name, []).append((r.deletion_auc, r.insertion_auc))
            beats[r.name] = beats.get(r.name, 0) + (r.name in ranking.beats_random)
        best = ", ".join(r.name for r in ranking.rows[:3])
        print(
            f"  {s.name:10} target {ranking.target.label!r} p={ranking.target.probability:.2f}; best: {best}"
        )
    names = list(rows)
    header = f"{'map':18}" + "".join(f"{s.name[:9]:>13}" for s in samples) + f"{'mean':>13}  beats random"
    print("\n  deletion area / insertion area (deletion: lower is better; insertion: higher is better)")
    print("  " + header)
    for n in names:
        cells = "".join(f"{d:6.3f}/{i:5.3f} " for d, i in rows[n])
        d_mean = np.mean([d for d, _ in rows[n]])
        i_mean = np.mean([i for _, i in rows[n]])
        verdict = "-" if n == fa.RANDOM else f"{beats[n]}/{len(samples)}"
        print(f"  {n:18}{cells}{d_mean:6.3f}/{i_mean:5.3f}  {verdict}")
    every = [n for n in names if n != fa.RANDOM and beats[n] == len(samples)]
    never = [n for n in names if n != fa.RANDOM and beats[n] < len(samples)]
    print(f"\n  beat the random map on every picture: {', '.join(every) or 'none'}")
    print(f"  not on every picture: {', '.join(f'{n} ({beats[n]}/{len(samples)})' for n in never) or 'none'}")
    if with_road:
        print("\n  ROAD, (mean LeRF - mean MoRF) / 2 over 10..90 % removed (higher is better)")
        print(f"  {'map':18}" + "".join(f"{s.name[:9]:>10}" for s in samples) + f"{'mean':>10}  beats random")
        for n, values in road.items():
            wins = sum(v > r for v, r in zip(values, road[fa.RANDOM], strict=True))
            verdict = "-" if n == fa.RANDOM else f"{wins}/{len(samples)}"
            print(f"  {n:18}" + "".join(f"{v:10.3f}" for v in values) + f"{np.mean(values):10.3f}  {verdict}")
    print(f"  table computed in {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--score-cam-k", type=int, default=128, help="Score-CAM's channels (0: leave it out)")
    parser.add_argument("--substrate", choices=["black", "mean"], default="black")
    parser.add_argument("--road", action="store_true", help="add each map's ROAD score")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bb = bv.load_backbone(args.backbone, device="cpu")
    layer = bb.spec.layers[-1].name
    if not args.skip_timing:
        timing(bb, layer, args.repeats)
    if not args.skip_table:
        table(bb, layer, args.score_cam_k, args.substrate, args.road)


if __name__ == "__main__":
    main()
