"""A block drawn from its spec: boxes for its parts, arrows between them, the shortcut around the branch.

Pure drawing with PIL (no Streamlit, no model): :func:`draw_block` reads a :class:`~backbone_viz.BlockSpec`
and, when a picture went through the block, its :class:`~backbone_viz.InsideBlock` (one representative
channel in each box, as in the stage strip, and the shapes on the arrows).

The layout is worked out along two axes, ``main`` (the direction the picture flows) and ``cross``, then
turned into pixels for one of two orientations: ``"horizontal"`` (left to right, the page's wide diagram;
the shortcut runs above the branch) or ``"vertical"`` (top to bottom, as in the papers' figures: the
narrow family cards, and inception's four branches side by side). Fonts and boxes are sized for a
projector at 1280 × 720 showing the picture about 900 px wide.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import backbone_viz as bv
from backbone_viz import render
from backbone_viz.core.block_kinds import get_kind

Orientation = Literal["horizontal", "vertical"]

#: Box fill and border by role group: what flows (grey), what computes (orange), the shortcut (green),
#: where the paths meet (purple).
FILL = {"io": "#eef2f7", "op": "#fff3e0", "shortcut": "#e8f5e9", "sum": "#f3e5f5"}
BORDER = {"io": "#5b6b7f", "op": "#e08a00", "shortcut": "#2e7d32", "sum": "#7b1fa2"}
SHORTCUT_COLOUR = BORDER["shortcut"]
ARROW_COLOUR = "#37474f"
TEXT = "#111111"
MUTED = "#455a64"
OUTPUT_BORDER = "#c62828"

_ROLE_GROUP = {
    "input": "io", "output": "io", "shortcut": "shortcut", "sum": "sum",
}  # fmt: skip


@dataclass(frozen=True)
class Style:
    """Sizes in pixels of one kind of drawing (the page's diagram, a family card)."""

    thumb: int  # side of a map in a box (0: no maps)
    box: int  # box extent across its text (width of a box)
    title_px: int
    detail_px: int
    shape_px: int
    gap: int  # between boxes along the flow
    cross_gap: int  # between boxes side by side
    lane: int  # distance of the shortcut lane from the boxes' edge
    detail_lines: int
    margin: int = 20
    pad: int = 8
    line: int = 4


PAGE = Style(thumb=160, box=206, title_px=31, detail_px=24, shape_px=26, gap=124, cross_gap=26, lane=54,
             detail_lines=4)  # fmt: skip
INCEPTION_PAGE = Style(thumb=88, box=268, title_px=31, detail_px=24, shape_px=26, gap=56, cross_gap=30,
                       lane=54, detail_lines=3)  # fmt: skip
CARD = Style(thumb=0, box=300, title_px=32, detail_px=26, shape_px=28, gap=46, cross_gap=14, lane=40,
             detail_lines=2, margin=14)  # fmt: skip
INCEPTION_CARD = Style(thumb=0, box=150, title_px=28, detail_px=24, shape_px=26, gap=50, cross_gap=12,
                       lane=40, detail_lines=3, margin=14)  # fmt: skip


@dataclass(frozen=True)
class _Node:
    key: str
    title: str
    detail: str
    group: str
    main: int  # index along the flow
    cross: float  # position across it, in box units (0: the main line; -1: the shortcut lane)
    part: str | None  # graph node whose map the box shows
    output: bool = False


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    shortcut: bool = False
    text: str | None = None  # None: the source's shape, when known


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float) -> list[str]:
    """Words of ``text`` in lines at most ``width`` pixels wide (a longer word keeps a line of its own)."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _split(label: str) -> tuple[str, str]:
    """A part's label as a short title and a detail: ``"expand: 1×1 convolution ..."`` -> both halves;
    ``"2×2 max pool (halves the map)"`` -> ``"2×2 max pool"``, ``"halves the map"``."""
    if ":" in label:
        title, detail = label.split(":", 1)
        return title.strip(), detail.strip()
    match = re.match(r"^(.*?)\s*\((.*)\)\s*$", label)
    if match:
        return match.group(1), match.group(2)
    return label, ""


def _short(text: str) -> str:
    """Text without brackets, "convolution(s)" as "conv", for a box."""
    text = re.sub(r"\s+\(.*?\)", "", text)
    return re.sub(r"convolutions?", "conv", text).strip()


def _compact(label: str) -> str:
    """A few words for a card's box: the detail (the title where there is no colon), shortened."""
    title, detail = _split(label)
    text = _short(detail if ":" in label else title)
    return text.replace(" + ReLU6", "").replace("one ", "").strip() or title


def _detail(label: str) -> str:
    """The page's second line of a box: the label's detail, shortened (torchvision's "5×5" branch named)."""
    text = _short(_split(label)[1])
    return text + " (paper: 5×5)" if "5×5" in label else text


def _layout(block: bv.BlockSpec, *, compact: bool) -> tuple[list[_Node], list[_Edge]]:
    """The boxes and arrows of a block, by kind (see :mod:`backbone_viz.core.blocks` for the roles)."""
    parts = {p.role: p for p in reversed(block.parts)}  # the first part of each role
    out_name = block.part("output").name

    def node(part: bv.PartSpec, main: int, cross: float = 0.0, *, title: str | None = None) -> _Node:
        t, d = _short(_split(part.label)[0]), _detail(part.label)
        if compact and part.role in ("expand", "depthwise", "project"):
            t, d = part.role, _compact(part.label)
        elif compact:
            t, d = (title or _compact(part.label)), ""
        elif title is not None:
            t = title
        group = _ROLE_GROUP.get(part.role, "op")
        return _Node(part.name + "@" + part.role, t, d, group, main, cross, part.name, part.name == out_name)

    nodes: list[_Node] = []
    edges: list[_Edge] = []
    kind = get_kind(block.kind)
    if kind.side_by_side:
        nodes.append(node(parts["input"], 0, title="input"))
        branches = [p for p in block.parts if p.role == "branch"]
        for i, p in enumerate(branches):
            nodes.append(node(p, 1, i - (len(branches) - 1) / 2))
        nodes.append(node(parts["output"], 2, title="concatenate" if compact else None))
        for n in nodes[1:-1]:
            edges += [_Edge(nodes[0].key, n.key), _Edge(n.key, nodes[-1].key)]
        return nodes, edges

    seen: set[str] = set()
    for role in kind.chain:
        part = parts.get(role)
        if part is None or part.name in seen:
            continue
        seen.add(part.name)
        title = "input" if role == "input" else None
        if compact and role == "sum":
            title = "+"
        nodes.append(node(part, len(nodes), title=title))
    for a, b in zip(nodes, nodes[1:], strict=False):
        edges.append(_Edge(a.key, b.key))
    shortcut = parts.get("shortcut")
    if shortcut is not None:
        first, total = nodes[0], next(n for n in nodes if n.part == parts["sum"].name)
        if shortcut.name == parts["input"].name:  # identity: an arrow around the branch
            text = "shortcut" if compact else "shortcut: the input itself"
            edges.append(_Edge(first.key, total.key, shortcut=True, text=text))
        elif not compact:  # the page: the projection written on the arrow keeps one row of boxes, low
            text = f"shortcut: {_detail(shortcut.label)}"
            edges.append(_Edge(first.key, total.key, shortcut=True, text=text))
        else:  # a 1x1 projection on the shortcut lane, beside the branch
            proj = node(
                shortcut,
                (first.main + total.main) // 2 or 1,
                -1.0,
                title="1×1 projection" if compact else None,
            )
            nodes.append(proj)
            edges += [_Edge(first.key, proj.key, shortcut=True), _Edge(proj.key, total.key, shortcut=True)]
    return nodes, edges


#: The smallest text a diagram may show, in screen pixels (a projector's 1280 × 720 screen).
MIN_TEXT_PX = 12


def style_for(block: bv.BlockSpec, *, maps: bool) -> Style:
    """The sizes :func:`draw_block` uses for ``block``: the page's (with maps) or a card's (without)."""
    inception = get_kind(block.kind).side_by_side
    if maps:
        return INCEPTION_PAGE if inception else PAGE
    return INCEPTION_CARD if inception else CARD


def readable_width(image: Image.Image, style: Style, *, text_px: int = MIN_TEXT_PX) -> int:
    """The narrowest width, in screen pixels, at which ``image`` (drawn with ``style``) still shows its
    smallest text ``text_px`` tall."""
    smallest = min(style.title_px, style.detail_px, style.shape_px)
    return math.ceil(image.width * text_px / smallest)


def orientation_for(block: bv.BlockSpec) -> Orientation:
    """The page draws inception's four branches side by side (top to bottom), the rest left to right."""
    return "vertical" if get_kind(block.kind).side_by_side else "horizontal"


def draw_block(
    block: bv.BlockSpec,
    inside: bv.InsideBlock | None = None,
    *,
    orientation: Orientation | None = None,
    style: Style | None = None,
) -> Image.Image:
    """The block as boxes and arrows, with this picture's maps and shapes when ``inside`` is given.

    Args:
        block: the block to draw.
        inside: the block opened on a picture: each box shows one representative channel of its part
            (the crop for the network's input) and each arrow the shape it carries. ``None``: boxes only.
        orientation: default :func:`orientation_for` on the page, ``"vertical"`` without maps.
        style: sizes; default the page's (with maps) or a card's (without).

    Returns:
        RGB PIL image on white.
    """
    compact = inside is None
    if orientation is None:
        orientation = orientation_for(block) if inside is not None else "vertical"
    if style is None:
        style = style_for(block, maps=inside is not None)
    if inside is None:
        style = Style(**{**style.__dict__, "thumb": 0})
    nodes, edges = _layout(block, compact=compact)
    shapes = {} if inside is None else {p.name: p.shape for p in inside.parts}
    title_font, detail_font = render.font(style.title_px, True), render.font(style.detail_px)
    shape_font = render.font(style.shape_px)
    horizontal = orientation == "horizontal"
    # A box on the shortcut lane (a 1x1 projection) shows no map when drawn left to right, so that the
    # two rows of boxes stay low enough for a projector's first screen.
    lane_nodes = [n for n in nodes if n.cross < 0 and not get_kind(block.kind).side_by_side]

    # Each box's text lines and size (w across, h down, in pixels, whatever the orientation). A box is
    # wide enough for the longest word of its title, so that no text runs over its edge.
    words = [word for n in nodes for word in n.title.split()]
    box = max([style.box] + [round(title_font.getlength(w)) + 2 * style.pad for w in words])
    room = box - 2 * style.pad
    texts: dict[str, tuple[list[str], list[str]]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for n in nodes:
        title_lines = _wrap(n.title, title_font, room) or [""]
        detail_lines = _wrap(n.detail, detail_font, room)
        if len(detail_lines) > style.detail_lines:
            detail_lines = detail_lines[: style.detail_lines]
            detail_lines[-1] = detail_lines[-1].rstrip(" ,;") + "…"
        texts[n.key] = (title_lines, detail_lines)
        thumb = style.thumb and not (horizontal and n in lane_nodes)
        h = (
            2 * style.pad
            + len(title_lines) * round(style.title_px * 1.2)
            + (style.thumb + style.pad if thumb else 0)
            + len(detail_lines) * round(style.detail_px * 1.2)
        )
        sizes[n.key] = (box, h)
    # Box extents: along the flow per step (step_em), across it one for all (ec), so that arrows line up;
    # the lane's boxes across it as tall as they need (ec_lane). Along the flow each step is as long as its
    # longest box; across it, every box is as wide as the widest.
    ec = max((sizes[n.key][1] if horizontal else sizes[n.key][0]) for n in nodes if n not in lane_nodes)
    ec_lane = max((sizes[n.key][1] if horizontal else ec) for n in lane_nodes) if lane_nodes else ec
    # Between boxes along the flow, room for the widest shape written over an arrow (left to right).
    gap = style.gap
    if horizontal and shapes:
        widest = max(
            shape_font.getlength(line)
            for c, h, w in shapes.values()
            for line in (f"{c} ch", f"{h} × {w}")
        )
        gap = max(gap, round(widest) + 4 * style.pad)
    steps = sorted({n.main for n in nodes})
    step_em = {
        m: max((sizes[n.key][0] if horizontal else sizes[n.key][1]) for n in nodes if n.main == m)
        for m in steps
    }
    main_at: dict[int, float] = {}
    for i, m in enumerate(steps):
        main_at[m] = (
            0.0 if i == 0 else main_at[steps[i - 1]] + step_em[steps[i - 1]] / 2 + gap + step_em[m] / 2
        )
    pitch_c = ec + style.cross_gap
    has_lane = any(e.shortcut for e in edges)
    crosses = [n.cross for n in nodes if n not in lane_nodes] or [0.0]
    low_c = min(crosses) * pitch_c - ec / 2
    high_c = max(crosses) * pitch_c + ec / 2
    # The shortcut lane: above the boxes (horizontal) or to their right (vertical).
    lane_c = (low_c - style.lane) if horizontal else (high_c + style.lane)
    if lane_nodes:
        lane_c = (low_c - style.lane - ec_lane / 2) if horizontal else (high_c + style.lane + ec_lane / 2)

    def _extent(n: _Node) -> float:
        return ec_lane if n in lane_nodes else ec

    def centre(n: _Node) -> tuple[float, float]:
        c = lane_c if n in lane_nodes else n.cross * pitch_c
        return main_at[n.main], c

    by_key = {n.key: n for n in nodes}

    def shape_text(part: str | None) -> str | None:
        shape = shapes.get(part) if part else None
        if shape is None:
            return None
        c, h, w = shape
        return f"{c} ch\n{h} × {w}" if horizontal else f"{c} × {h} × {w}"

    # Bounds in (m, c), then the canvas.
    cs = [centre(n)[1] for n in nodes]
    min_m = main_at[steps[0]] - step_em[steps[0]] / 2
    max_m = main_at[steps[-1]] + step_em[steps[-1]] / 2
    min_c = min(c - _extent(n) / 2 for n, c in zip(nodes, cs, strict=True))
    max_c = max(c + _extent(n) / 2 for n, c in zip(nodes, cs, strict=True))
    def text_width(text: str | None) -> float:
        return max((shape_font.getlength(line) for line in (text or "").split("\n")), default=0.0)

    def edge_text(e: _Edge) -> str | None:
        return e.text if e.text is not None else shape_text(by_key[e.source].part)

    if has_lane:
        if horizontal:
            min_c = min(min_c, lane_c - style.shape_px * 1.6)
        else:  # the shortcut's text, to the right of the lane
            lane_text = max(text_width(edge_text(e)) for e in edges if e.shortcut)
            max_c = max(max_c, lane_c + 8 + lane_text)
    if not horizontal and shapes:  # shapes written to the right of the arrows, past the widest box
        side = max(text_width(edge_text(e)) for e in edges if not e.shortcut)
        max_c += max(0.0, 8 + side - ec / 2)
    m0, c0 = min_m - style.margin, min_c - style.margin
    size_m, size_c = max_m + style.margin - m0, max_c + style.margin - c0
    width, height = (size_m, size_c) if horizontal else (size_c, size_m)
    canvas = Image.new("RGB", (round(width), round(height)), "white")
    draw = ImageDraw.Draw(canvas)

    def xy(m: float, c: float) -> tuple[float, float]:
        return (m - m0, c - c0) if horizontal else (c - c0, m - m0)

    def exits(n: _Node) -> tuple[float, float, float, float]:
        m, c = centre(n)
        em = step_em[n.main]
        return m - em / 2, m + em / 2, c - _extent(n) / 2, c + _extent(n) / 2

    def arrow(points: list[tuple[float, float]], colour: str, width: int) -> None:
        pts = [xy(m, c) for m, c in points]
        draw.line(pts, fill=colour, width=width, joint="curve")
        (x1, y1), (x2, y2) = pts[-2], pts[-1]
        angle = np.arctan2(y2 - y1, x2 - x1)
        size = 6 + 3 * width
        left = (x2 - size * np.cos(angle - 0.45), y2 - size * np.sin(angle - 0.45))
        right = (x2 - size * np.cos(angle + 0.45), y2 - size * np.sin(angle + 0.45))
        draw.polygon([(x2, y2), left, right], fill=colour)

    def label(m: float, c: float, text: str, colour: str, *, side: str) -> None:
        """Text beside a point of an arrow: ``side`` "before" (above / left) or "after" the line."""
        x, y = xy(m, c)
        if horizontal:
            anchor = "md" if side == "before" else "ma"
            y += -5 if side == "before" else 5
        else:
            anchor = "lm"
            x += 8
        draw.multiline_text(
            (x, y), text, fill=colour, font=shape_font, anchor=anchor, align="center", spacing=2
        )

    for e in edges:
        s, t = by_key[e.source], by_key[e.target]
        s_lo, s_hi, s_cl, s_ch = exits(s)
        t_lo, t_hi, t_cl, t_ch = exits(t)
        (sm, sc), (tm, tc) = centre(s), centre(t)
        text = e.text if e.text is not None else shape_text(s.part)
        if e.shortcut:
            colour, line = SHORTCUT_COLOUR, style.line + 2
            s_edge = s_cl if horizontal else s_ch
            t_edge = t_cl if horizontal else t_ch
            if s in lane_nodes:  # from the projection box along the lane, then into the sum's side
                points = [(s_hi, lane_c), (tm, lane_c), (tm, t_edge)]
            elif t in lane_nodes:  # from the input's side onto the lane, into the projection box
                points = [(sm, s_edge), (sm, lane_c), (t_lo, lane_c)]
            else:  # the identity: out of the input's side, along the lane, into the sum's side
                points = [(sm, s_edge), (sm, lane_c), (tm, lane_c), (tm, t_edge)]
            arrow(points, colour, line)
            if text:
                a, b = points[-3] if len(points) > 3 else points[0], points[-2]
                mid = ((a[0] + b[0]) / 2, lane_c)
                if not horizontal:
                    mid = (mid[0], lane_c)
                label(*mid, text, colour, side="before")
            continue
        colour, line = ARROW_COLOUR, style.line
        if abs(sc - tc) < 1e-6:
            points = [(s_hi, sc), (t_lo, tc)]
        else:  # fan out or in: along the flow to the middle of the gap, across, along again
            mid = (s_hi + t_lo) / 2
            points = [(s_hi, sc), (mid, sc), (mid, tc), (t_lo, tc)]
        arrow(points, colour, line)
        if text:
            if abs(sc - tc) < 1e-6:
                label((s_hi + t_lo) / 2, sc, text, MUTED, side="before")
            elif s.cross != 0 or t is by_key[edges[0].target]:
                # Into the concatenation: each branch's shape by its own arrow; fanning out: the input's once.
                label(s_hi + gap * 0.22, sc, text, MUTED, side="after")

    for n in nodes:
        m, c = centre(n)
        x, y = xy(m, c)
        w, h = (step_em[n.main], _extent(n)) if horizontal else (_extent(n), step_em[n.main])
        box = [x - w / 2, y - h / 2, x + w / 2, y + h / 2]
        border = OUTPUT_BORDER if n.output else BORDER[n.group]
        draw.rounded_rectangle(
            box, radius=12, fill=FILL[n.group], outline=border, width=style.line + (2 if n.output else 0)
        )
        title_lines, detail_lines = texts[n.key]
        _, bh = sizes[n.key]
        top = y - bh / 2 + style.pad
        for text in title_lines:
            draw.text((x, top), text, fill=TEXT, font=title_font, anchor="ma")
            top += round(style.title_px * 1.2)
        if style.thumb and inside is not None and n.part is not None and not (horizontal and n in lane_nodes):
            picture = _thumb(inside, n.part, style.thumb)
            canvas.paste(picture, (round(x - style.thumb / 2), round(top)))
            top += style.thumb + style.pad
        for text in detail_lines:
            draw.text((x, top), text, fill=MUTED, font=detail_font, anchor="ma")
            top += round(style.detail_px * 1.2)
    return canvas


def _thumb(inside: bv.InsideBlock, part: str, size: int) -> Image.Image:
    """One representative channel of a part's map (the crop itself for the network's 3-channel input)."""
    array = inside.maps[part]
    if (
        array.shape[0] == 3
        and inside.block.parts[0].name == part
        and array.shape[1:]
        == (
            inside.input_image.height,
            inside.input_image.width,
        )
    ):
        return inside.input_image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return render.map_image(array[render.representative_channel(array)], size=size)


def thumb_channels(inside: bv.InsideBlock) -> dict[str, int]:
    """Which channel each part's box shows (``{part name: channel}``), for the page's caption."""
    return {
        name: render.representative_channel(array)
        for name, array in inside.maps.items()
        if not (array.shape[0] == 3 and name == inside.block.parts[0].name)
    }
