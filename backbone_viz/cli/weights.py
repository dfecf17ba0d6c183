"""``python -m backbone_viz weights ...``: get every backbone's weights ready before class.

Three commands::

    python -m backbone_viz weights list                 # what is here, how big, where it is or comes from
    python -m backbone_viz weights fetch --all          # download (or copy from the mirror), verified
    python -m backbone_viz weights fetch --dense        # the detectors' and segmenters' files too (1.5 GB)
    python -m backbone_viz weights import /media/usb    # copy weights files found on a USB stick

Names are backbones (``resnet50``), dense models (``fasterrcnn_resnet50_fpn``, :mod:`backbone_viz.dense`) and
the ImageNet weights those started from (``resnet50.IMAGENET1K_V1``), which the comparison of a detector's
backbone with the classifier's reads.

The command line (:mod:`backbone_viz.cli`) calls :func:`add_weights_parser` and dispatches with ``args.func(args)``;
:func:`main` builds a parser with only this command, for tests and for use before ``cli.py`` exists.
Exit codes: 0 when everything asked for is in place, 1 with a one-line reason otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from backbone_viz.core.device import DEVICE_CHOICES, DEVICE_ENV, describe_device, resolve_device
from backbone_viz.core.specs import BackboneSpec
from backbone_viz.errors import BackboneVizError, WeightsError
from backbone_viz.files import weights
from backbone_viz.zoo import list_backbones

__all__ = ["add_weights_parser", "backbone_names", "cmd_fetch", "cmd_import", "cmd_list", "dense_names", "main"]


def _bundled() -> dict[str, BackboneSpec]:
    """The backbones whose weights ship with the install, by name (the specs say which)."""
    return {spec.name: spec for spec in list_backbones() if spec.bundled}


def backbone_names() -> list[str]:
    """Every backbone that has pretrained weights: the bundled ones, then the downloadable ones.

    The downloadable ones are read from :data:`weights.TORCHVISION_WEIGHTS` on each call, so tests can
    swap the table.
    """
    return [*_bundled(), *weights.TORCHVISION_WEIGHTS]


def dense_names() -> list[str]:
    """Every detector and segmenter, then the ImageNet weights they started from (read on each call)."""
    return list(weights.DENSE_WEIGHTS)


def _weights_file(name: str) -> weights.WeightsFile:
    table = weights.TORCHVISION_WEIGHTS
    return table[name] if name in table else weights.DENSE_WEIGHTS[name]


# ------------------------------------------------------------------------------------------- parser


def add_weights_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``weights`` command, with ``list``, ``fetch`` and ``import``, to a subparsers object.

    Each leaf sets ``func`` (``args.func(args) -> int``, the exit code).
    """
    parser = subparsers.add_parser(
        "weights",
        help="list, download or import pretrained weights",
        description="Get pretrained weights ready before class: from the internet, a school server "
        f"({weights.MIRROR_ENV}=URL or folder) or a USB stick (weights import FOLDER).",
    )
    commands = parser.add_subparsers(dest="weights_command", metavar="COMMAND", required=True)

    p_list = commands.add_parser("list", help="show every backbone's weights: here or not, size, where")
    p_list.set_defaults(func=cmd_list)

    p_fetch = commands.add_parser(
        "fetch",
        help="download weights (verified) into the torch cache",
        description="Download weights into the torch cache (TORCH_HOME/hub/checkpoints), from "
        f"torchvision or from the mirror in {weights.MIRROR_ENV}; each file is checked before it is kept.",
    )
    p_fetch.add_argument("names", nargs="*", metavar="NAME", help="backbone names (see 'weights list')")
    p_fetch.add_argument("--all", action="store_true", help="every backbone")
    p_fetch.add_argument(
        "--dense",
        action="store_true",
        help="every detector and segmenter, and the ImageNet weights they started from",
    )
    p_fetch.set_defaults(func=cmd_fetch)

    p_import = commands.add_parser(
        "import",
        help="copy weights files found in a folder (a USB stick) into the torch cache",
        description="Look through FOLDER and its subfolders for torchvision weights files, check each "
        "one's SHA-256, and copy the good ones into the torch cache. Damaged copies are reported and skipped.",
    )
    p_import.add_argument("folder", type=Path, metavar="FOLDER")
    p_import.set_defaults(func=cmd_import)


def main(argv: list[str] | None = None) -> int:
    """Run ``weights ...`` as if it were ``python -m backbone_viz weights ...``; returns the exit code.

    Args:
        argv: the arguments after the program name, e.g. ``["weights", "fetch", "--all"]``.
    """
    parser = argparse.ArgumentParser(prog="python -m backbone_viz")
    add_weights_parser(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on a usage error and 0 after --help
        return e.code if isinstance(e.code, int) else 2
    return args.func(args)


# ------------------------------------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """``weights list``: every backbone, whether its weights are here, their size and where they are.

    Always exits 0: it reports, it does not ask for anything.
    """
    out = out or sys.stdout
    rows: list[tuple[str, str, str, str]] = []
    for name in backbone_names():
        if name in _bundled():
            spec = _bundled()[name]
            path = weights.bundled_path(spec)
            if path is None:
                rows.append((name, "missing", "", f"bundled, but {spec.bundled_weights.package} is not installed"))
            else:
                rows.append((name, "bundled", weights.describe_size(path.stat().st_size), str(path)))
            continue
        wf = weights.TORCHVISION_WEIGHTS[name]
        path = weights.cached_path(wf)
        if path is not None:
            rows.append((name, "here", weights.describe_size(path.stat().st_size), str(path)))
        else:
            rows.append((name, "missing", weights.describe_size(wf.size_bytes), "from " + _source_text(wf)))
    _print_table(("backbone", "weights", "size", "where"), rows, out)
    dense_rows = []
    for name in dense_names():
        wf = weights.DENSE_WEIGHTS[name]
        path = weights.cached_path(wf)
        if path is not None:
            dense_rows.append((name, "here", weights.describe_size(path.stat().st_size), str(path)))
        else:
            size = weights.describe_size(wf.size_bytes)
            dense_rows.append((name, "missing", size, "from " + _source_text(wf)))
    if dense_rows:
        print(file=out)
        _print_table(("detector, segmenter or start weights", "weights", "size", "where"), dense_rows, out)
    source = weights.mirror()
    print(f"\ncache:  {weights.cache_dir()}  (set TORCH_HOME to use another folder)", file=out)
    if source is None:
        print(f"mirror: none  (set {weights.MIRROR_ENV} to a school server URL or a folder)", file=out)
    else:
        print(f"mirror: {source}  (from {weights.MIRROR_ENV})", file=out)
    try:
        where = describe_device(resolve_device(None))
    except BackboneVizError as error:
        where = f"none usable: {error.message}"
    print(f"device: {where}  (set {DEVICE_ENV}: {DEVICE_CHOICES})", file=out)
    return 0


def _print_table(header: tuple[str, str, str, str], rows: list[tuple[str, str, str, str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3],
            file=out,
        )


def cmd_fetch(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``weights fetch NAME... | --all | --dense``: download, verified, with a progress bar on stderr."""
    out, err = out or sys.stdout, err or sys.stderr
    names: list[str] = list(args.names)
    every_dense = bool(getattr(args, "dense", False))
    known = backbone_names() + dense_names()
    if (args.all or every_dense) and names:
        print("error: give backbone names or --all / --dense, not both", file=err)
        return 2
    if not args.all and not every_dense and not names:
        print(f"error: name a backbone or use --all; backbones: {', '.join(backbone_names())}", file=err)
        return 2
    unknown = [n for n in names if n not in known]
    if unknown:
        print(
            f"error: unknown backbone {', '.join(map(repr, unknown))}; choose from: {', '.join(known)}",
            file=err,
        )
        return 2
    if args.all or every_dense:
        names = (backbone_names() if args.all else []) + (dense_names() if every_dense else [])
    wanted = list(dict.fromkeys(names))  # keeps order, drops repeats
    files = {_weights_file(n).filename: _weights_file(n) for n in wanted if n not in _bundled()}
    todo = [wf for wf in files.values() if weights.cached_path(wf) is None]
    if len(todo) > 1:  # the whole bill before the first byte: a classroom network is slow
        total = sum(wf.size_bytes or 0 for wf in todo)
        print(f"{len(todo)} files to fetch, {weights.describe_size(total)} in all", file=out)
    failed: list[str] = []
    for name in wanted:
        if name in _bundled():
            spec = _bundled()[name]
            path = weights.bundled_path(spec)
            if path is None:
                package = spec.bundled_weights.package
                print(f"{name}: ships with the package {package}, which is not installed", file=out)
                failed.append(name)
            else:
                print(f"{name}: ships with the install ({path})", file=out)
            continue
        wf = _weights_file(name)
        path = weights.cached_path(wf)
        if path is not None:
            print(f"{name}: already here ({path})", file=out)
            continue
        print(
            f"{name}: fetching {wf.filename} ({weights.describe_size(wf.size_bytes)}) from {_source_text(wf)}",
            file=out,
        )
        out.flush()
        bar = ProgressBar(name, stream=err)
        try:
            path = weights.fetch(wf, progress=bar)
        except WeightsError as e:
            bar.close()
            print(f"{name}: failed: {e}", file=out)
            failed.append(name)
            continue
        bar.close()
        print(f"{name}: ready, verified ({path})", file=out)
    if failed:
        print(f"error: not ready: {', '.join(failed)} (see the messages above)", file=err)
        return 1
    return 0


def cmd_import(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``weights import FOLDER``: copy the good weights files found in FOLDER into the cache."""
    out, err = out or sys.stdout, err or sys.stderr
    bar = ProgressBar("import", stream=err)
    try:
        report = weights.import_folder(args.folder, progress=bar)
    except WeightsError as e:
        bar.close()
        print(f"error: {e}", file=err)
        return 1
    bar.close()
    for filename in report.imported:
        print(f"imported  {filename}", file=out)
    for filename in report.already_present:
        print(f"present   {filename} (already in the cache)", file=out)
    for path, reason in report.failed:
        print(f"skipped   {path}: {reason}", file=out)
    for path in report.unknown:
        print(f"unknown   {path} (no backbone or detector here uses this file)", file=out)
    ready = [n for n, wf in weights.TORCHVISION_WEIGHTS.items() if weights.cached_path(wf) is not None]
    print(
        f"{len(ready)} of {len(weights.TORCHVISION_WEIGHTS)} downloadable backbones ready: "
        f"{', '.join(ready) or 'none'}",
        file=out,
    )
    dense_ready = [n for n, wf in weights.DENSE_WEIGHTS.items() if weights.cached_path(wf) is not None]
    print(
        f"{len(dense_ready)} of {len(weights.DENSE_WEIGHTS)} detector, segmenter and start weights files ready"
        f"{': ' + ', '.join(dense_ready) if dense_ready else ''}",
        file=out,
    )
    if not report.ok:
        print(f"error: only damaged copies found of: {', '.join(report.missing)}", file=err)
        return 1
    if not report.imported and not report.already_present:
        expected = ", ".join(
            wf.filename for wf in [*weights.TORCHVISION_WEIGHTS.values(), *weights.DENSE_WEIGHTS.values()]
        )
        print(f"error: no weights files found in {args.folder} (looked for: {expected})", file=err)
        return 1
    return 0


# ------------------------------------------------------------------------------------------- progress


class ProgressBar:
    """A one-line text progress bar, ``progress(done_bytes, total_bytes)``-compatible.

    Updates in place with ``\\r`` at most 10 times a second on a terminal; when the stream is not a terminal
    (a log file, a test), only the final line is written, so logs stay readable.

    Args:
        label: shown before the bar, e.g. the backbone name.
        stream: where to write (stderr by default).
        width: characters of the bar itself.
    """

    def __init__(self, label: str, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self._last_draw = 0.0
        self._line = ""
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int | None) -> None:
        if done == 0 and not total:
            return  # nothing to show yet (or nothing to copy at all)
        self._line = self._format(done, total)
        now = time.monotonic()
        if self._tty and (now - self._last_draw >= 0.1 or (total is not None and done >= total)):
            self._last_draw = now
            self.stream.write("\r" + self._line)
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line (writes the last state when not on a terminal)."""
        if not self._line:
            return
        self.stream.write(("\r" + self._line if self._tty else self._line) + "\n")
        self.stream.flush()
        self._line = ""

    def _format(self, done: int, total: int | None) -> str:
        mb = 1024 * 1024
        if not total:
            return f"{self.label}  {done / mb:7.1f} MB"
        fraction = min(done / total, 1.0)
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        return f"{self.label}  [{bar}] {done / mb:7.1f}/{total / mb:.1f} MB {fraction:4.0%}"


def _source_text(wf: weights.WeightsFile) -> str:
    try:
        source = weights.resolve_source(wf)
    except WeightsError as e:
        return f"(mirror unusable: {e.message})"
    return f"mirror {source}" if weights.mirror() is not None else source


if __name__ == "__main__":
    raise SystemExit(main())
