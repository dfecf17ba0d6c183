"""The nginx in front of the class server: Streamlit's files prepared for it, and a configuration it accepts."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from backbone_viz.server import nginx


def _fake_streamlit_static(folder: Path) -> Path:
    source = folder / "streamlit-static"
    (source / "static" / "js").mkdir(parents=True)
    (source / "static" / "media").mkdir()
    (source / "index.html").write_text("<html>not served by nginx</html>")
    (source / "static" / "js" / "index.abc123.js").write_text("console.log('a learner');\n" * 200)
    (source / "static" / "js" / "tiny.js").write_text("1;")
    (source / "static" / "js" / "index.abc123.js.map").write_text("{}" * 2000)
    (source / "static" / "media" / "font.woff2").write_bytes(bytes(range(256)) * 20)
    return source


def test_prepare_static_copies_every_file_and_packs_the_text_ones(tmp_path: Path) -> None:
    source = _fake_streamlit_static(tmp_path)
    www = tmp_path / "www"
    total = nginx.prepare_static(www, source)
    js = www / "static" / "js" / "index.abc123.js"
    assert js.read_bytes() == (source / "static" / "js" / "index.abc123.js").read_bytes()
    assert gzip.decompress(js.with_name(js.name + ".gz").read_bytes()) == js.read_bytes()
    # Small files, source maps and already-compressed fonts are copied, not packed.
    assert not (www / "static" / "js" / "tiny.js.gz").exists()
    assert not (www / "static" / "js" / "index.abc123.js.map.gz").exists()
    assert (www / "static" / "media" / "font.woff2").is_file()
    assert not (www / "static" / "media" / "font.woff2.gz").exists()
    assert not (www / "index.html").exists()  # the page itself comes from a replica (it is not hashed)
    assert total == sum(p.stat().st_size for p in www.rglob("*") if p.is_file())
    # Readable by nginx's unprivileged workers.
    assert all(p.stat().st_mode & 0o004 for p in www.rglob("*"))


def test_streamlit_static_is_the_installed_streamlits_folder() -> None:
    folder = nginx.streamlit_static()
    assert (folder / "index.html").is_file()
    assert any((folder / "static" / "js").glob("index.*.js"))


def test_config_names_the_replicas_the_files_and_the_upload_cap(tmp_path: Path) -> None:
    conf = nginx.nginx_config(
        address="0.0.0.0", port=8501, replica_ports=[9001, 9002], tmp=tmp_path, www=tmp_path / "www"
    )
    assert "listen 0.0.0.0:8501;" in conf
    assert "server 127.0.0.1:9001 " in conf and "server 127.0.0.1:9002 " in conf
    assert f"root {tmp_path / 'www'};" in conf and "gzip_static on;" in conf
    assert "client_max_body_size 20m;" in conf
    assert "application/javascript js mjs;" in conf
    assert "proxy_cache media;" in conf and f"proxy_cache_path {tmp_path}/media-cache " in conf


@pytest.mark.skipif(nginx.find_nginx() is None, reason="nginx is not installed")
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    for name in ("client-body", "proxy", "fastcgi", "uwsgi", "scgi", "media-cache"):
        (tmp_path / name).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        nginx.nginx_config(
            address="127.0.0.1", port=18501, replica_ports=[18502], tmp=tmp_path, www=tmp_path / "www"
        )
    )
    program = nginx.find_nginx()
    assert program is not None
    check = subprocess.run(
        [program, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_an_explicit_nginx_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(nginx.NginxError, match="no such program"):
        nginx.find_nginx(str(tmp_path / "nginx"))
    assert nginx.find_nginx() in (None, shutil.which("nginx"), "/usr/sbin/nginx")


def test_serve_refuses_several_replicas_without_nginx(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from backbone_viz.server import serve

    monkeypatch.setattr(serve, "find_nginx", lambda explicit=None: None)
    args = argparse.Namespace(replicas=2, nginx=None, address="127.0.0.1", port=18599)
    with pytest.raises(serve.ServeError, match="need nginx") as refused:
        serve.serve(args)
    assert "apt-get install nginx" in refused.value.hint
