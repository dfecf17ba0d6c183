"""Where the files that ship with backbone-viz are: the web app, its pages and config, the sample
pictures, the atlas and the measured sanity checks.

In a checkout they lie at the top of the repository (``app.py``, ``app_pages/``, ``.streamlit/``,
``assets/``); an install (``pip install .``) copies the same files into the package, as
``backbone_viz/app/`` (see ``pyproject.toml``), so ``backbone-viz serve`` and the samples work from any
folder. The checkout wins when both exist: a developer's edits are what runs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from backbone_viz.errors import BackboneVizError

_PACKAGE = Path(__file__).resolve().parents[1]  # backbone_viz/


@cache
def app_root() -> Path:
    """The folder holding ``app.py``, ``app_pages/``, ``.streamlit/`` and ``assets/``.

    Raises:
        BackboneVizError: neither a checkout nor an install holds them (a broken install).
    """
    for root in (_PACKAGE.parent, _PACKAGE / "app"):
        if (root / "app.py").is_file() and (root / "assets").is_dir():
            return root
    raise BackboneVizError(
        f"The web app's files are missing: no app.py and assets/ beside {_PACKAGE} or inside it.",
        "Reinstall backbone-viz (pip install .), or run it from a checkout of the repository.",
    )


def assets_dir() -> Path:
    """``assets/``: the sample pictures, the shipped atlas, the measured sanity checks."""
    return app_root() / "assets"
