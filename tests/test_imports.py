"""The package imports lazily, and the engine never imports streamlit."""

from __future__ import annotations

import subprocess
import sys

import pytest

import backbone_viz as bv
from tests.conftest import ROOT


def _python(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    ).stdout


def test_importing_the_package_loads_nothing_heavy() -> None:
    heavy = ("torch", "torchvision", "timm", "captum", "scipy", "sklearn", "matplotlib", "streamlit")
    loaded = _python(f"import sys, backbone_viz; print(*[m for m in {heavy!r} if m in sys.modules])")
    assert loaded.split() == []


def test_no_engine_module_imports_streamlit() -> None:
    """Every module of the engine, imported: the web app's toolkit is never among what they load."""
    out = _python(
        "import importlib, sys, backbone_viz as bv\n"
        "import pkgutil\n"
        "names = [m.name for m in pkgutil.walk_packages(bv.__path__, 'backbone_viz.') if '__main__' not in m.name]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names), 'streamlit' in sys.modules)"
    )
    count, streamlit = out.split()
    assert int(count) >= 30 and streamlit == "False"


def test_every_public_name_resolves_from_its_module() -> None:
    assert len(bv.__all__) == len(set(bv.__all__)) > 50
    for name in bv.__all__:
        value = getattr(bv, name)
        assert getattr(value, "__module__", "").startswith("backbone_viz."), name
    assert set(bv.__all__) <= set(dir(bv)) and "render" in dir(bv)
    assert bv.render.__name__ == "backbone_viz.render"
    with pytest.raises(AttributeError, match="no attribute 'analyse'"):
        bv.analyse  # noqa: B018 - the attribute lookup is the test


def test_the_command_lines_help_and_the_class_servers_supervisor_load_no_torch() -> None:
    """``--help`` lists every backbone, and ``serve`` checks the device, without torch in the process."""
    out = _python(
        "import sys\n"
        "from backbone_viz import cli\nfrom backbone_viz.server import serve\n"
        "help = cli.build_parser().format_help()\n"
        "where = serve.check_device('cpu')\n"
        "print(where, '|', 'resnet18' in cli.build_parser()._subparsers._group_actions[0].choices['analyze']"
        ".format_help(), '|', *[m for m in ('torch', 'torchvision', 'timm') if m in sys.modules])"
    )
    assert out.split("|")[0].strip() == "the CPU"
    assert out.split("|")[1].strip() == "True"
    assert out.split("|")[2].strip() == ""


def test_pages_never_touch_the_model_and_the_app_calls_it_only_through_bv() -> None:
    """A page never names a model-running function; the app's modules never import one by name (they call
    ``bv.<name>``, which the gateway check of tests/app/conftest.py watches)."""
    import ast

    from backbone_viz.core.runs import model_runs

    runs = set(model_runs(bv))
    for path in sorted((ROOT / "app_pages").glob("*.py")) + sorted((ROOT / "webui").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backbone_viz"):
                imported = {alias.name for alias in node.names} & runs
                assert not imported, f"{path.name} imports {imported} by name"
            if path.parent.name == "app_pages" and isinstance(node, ast.Attribute) and node.attr in runs:
                raise AssertionError(f"the page {path.name} calls {node.attr}: pages never touch the model")
