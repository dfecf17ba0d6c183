"""Which engine functions run a model: marked where they are defined, found from the engine.

The web app lets only its gateway run the model, in fair turns (``webui.compute.caches.in_turn``); its tests and
benchmarks count model runs. Both find the functions to watch here, from the mark each carries, rather
than from a hand list that a new function could miss.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


def runs_model(fn: F) -> F:
    """Marks ``fn`` as a function that runs a backbone's model (forward, backward or both)."""
    fn.runs_model = True  # type: ignore[attr-defined]
    return fn


def model_runs(package: ModuleType) -> tuple[str, ...]:
    """The public names of ``package`` (``backbone_viz``) that run a model, in ``__all__`` order."""
    return tuple(name for name in package.__all__ if getattr(getattr(package, name), "runs_model", False))
