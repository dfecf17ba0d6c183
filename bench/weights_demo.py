"""A classroom rehearsal of ``python -m backbone_viz weights ...``, offline, with tiny stand-in weights.

Serves small untrained checkpoints from a loopback "school server", points TORCH_HOME at a temporary folder
and swaps the weights table for files named after the real backbones (the real files are hundreds of MB and
their hashes are fixed), then runs ``list``, ``fetch`` (from the mirror), ``fetch`` with the internet down,
``import`` from a "USB stick" holding one good and one damaged copy, and ``list`` again. Nothing leaves
127.0.0.1 and the real torch cache is untouched.

Usage::

    python bench/weights_demo.py            # prints the transcript
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backbone_viz.cli import weights as cli_weights  # noqa: E402 - after the path set-up above
from backbone_viz.files import weights  # noqa: E402 - after the path set-up above


def _checkpoint(seed: int) -> bytes:
    torch.manual_seed(seed)
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(300, 600).state_dict(), buffer)  # about 0.7 MB, untrained
    return buffer.getvalue()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class name
        pass  # the transcript shows the commands' output, not the server's log


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(*args: str) -> None:
    print(f"\n$ python -m backbone_viz {' '.join(args)}", flush=True)
    with contextlib.redirect_stderr(sys.stdout):  # show the progress bar and errors in the transcript
        code = cli_weights.main(list(args))
    print(f"[exit code {code}]", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="weights-demo-") as tmp:
        tmp_path = Path(tmp)
        server_dir, usb = tmp_path / "school-server", tmp_path / "usb-stick"
        server_dir.mkdir()
        (usb / "backbone-weights").mkdir(parents=True)
        internet = f"http://127.0.0.1:{_refused_port()}/models"  # the internet is down in this classroom

        table: dict[str, weights.WeightsFile] = {}
        for seed, name in enumerate(["vgg16", "vgg19", "resnet50", "resnet101", "googlenet"]):
            data = _checkpoint(seed)
            filename = f"{name}_demo-{hashlib.sha256(data).hexdigest()[:8]}.pth"
            table[name] = weights.WeightsFile(filename, f"{internet}/{filename}", len(data))
            if name in ("resnet50", "googlenet"):
                (server_dir / filename).write_bytes(data)
            if name == "vgg16":
                (usb / "backbone-weights" / filename).write_bytes(data)
            if name == "vgg19":
                (usb / filename).write_bytes(data[:-1000] + bytes(1000))  # a damaged copy
        (usb / "resnet50-0676ba61.pth").write_bytes(b"an older torchvision file")
        (usb / "notes.txt").write_text("lesson plan")
        weights.TORCHVISION_WEIGHTS.clear()
        weights.TORCHVISION_WEIGHTS.update(table)

        handler = functools.partial(_QuietHandler, directory=str(server_dir))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        os.environ["TORCH_HOME"] = str(tmp_path / "torch-home")
        os.environ.pop(weights.MIRROR_ENV, None)
        try:
            print(
                f"# TORCH_HOME={os.environ['TORCH_HOME']}  (internet down; school server on {httpd.server_port})"
            )
            _run("weights", "list")
            os.environ[weights.MIRROR_ENV] = f"http://127.0.0.1:{httpd.server_port}/"
            print(f"\n# export {weights.MIRROR_ENV}={os.environ[weights.MIRROR_ENV]}")
            _run("weights", "fetch", "resnet50")
            _run("weights", "fetch", "resnet101")  # not on the school server: 404
            os.environ.pop(weights.MIRROR_ENV)
            print(f"\n# unset {weights.MIRROR_ENV}")
            _run("weights", "fetch", "googlenet")  # the internet is down: the offline advice
            _run("weights", "import", str(usb))
            _run("weights", "list")
        finally:
            httpd.shutdown()
            httpd.server_close()


if __name__ == "__main__":
    main()
