"""The nginx in front of the class server's replicas: its configuration, and Streamlit's files for it.

``python -m backbone_viz serve`` (:mod:`backbone_viz.server.serve`) starts the replicas and runs nginx with the
configuration written here. nginx does three jobs a Python server does badly for a whole class:

* it spreads sessions over the replicas, by a cookie (see :data:`NGINX_CONF`);
* it serves Streamlit's own browser files (``/static/``: JavaScript, CSS, fonts; 106 files and 4.5 MB for
  a first visit) from a copy, compressed ahead of time. Through Streamlit those files cost the replica's
  Python about 0.2 to 0.3 CPU-seconds per new browser, as much as drawing the pages, and travel
  uncompressed: with gzip a first visit downloads 1.7 MB instead of 4.5 MB, which a classroom's network
  notices (measured with Chromium; ``bench/load.py`` gives the CPU);
* it keeps the pictures the pages show (Streamlit's ``/media/`` files, named by the hash of their bytes)
  and sends them again itself: the sample pictures' maps and the gallery are the same files for a whole
  class. With both, a new student's Home page cost the server 0.05 to 0.07 CPU-seconds instead of 0.28 to
  0.34 (``streamlit run``).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
from pathlib import Path

from backbone_viz.errors import BackboneVizError


class NginxError(BackboneVizError):
    """nginx is missing or could not be prepared."""


#: Seconds nginx skips a replica after a failed request to it.
FAIL_TIMEOUT_S = 5


def streamlit_static() -> Path:
    """Streamlit's browser files, those its server sends under ``/static/``, of the installed version.

    Found without importing Streamlit: the engine never imports it.
    """
    spec = importlib.util.find_spec("streamlit")
    if spec is None or spec.origin is None:
        raise NginxError(
            "Streamlit is not installed.", "Install the app's requirements: pip install -r requirements.txt"
        )
    return Path(spec.origin).resolve().parent / "static"


#: File types worth compressing ahead of time (text); pictures and fonts are compressed already.
_COMPRESSED = {".js", ".css", ".json", ".svg", ".html", ".txt", ".map"}
#: A ``.map`` file is fetched only by a developer's browser tools: copied, not compressed.
_SKIP_GZIP = {".map"}

NGINX_CONF = """\
# Written by `python -m backbone_viz serve`; see backbone_viz/server/nginx.py for why each line is here.
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    types {{
{types}
    }}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client-body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size {upload_mb}m;
    # Streamlit names a media file (a picture on a page) by the hash of its bytes, and the web app draws a
    # figure once for every session (webui/figures.py): the sample pictures' maps and the gallery are the
    # same files for a whole class. Kept here, a file is sent by nginx from the second request on.
    proxy_cache_path {tmp}/media-cache levels=1:2 keys_zone=media:8m max_size={media_mb}m inactive=2h use_temp_path=off;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    # A returning browser keeps its replica; a new one gets a fresh key, hashed onto the replicas.
    map $cookie_bv_replica $bv_affinity {{ "" $request_id; default $cookie_bv_replica; }}
    upstream replicas {{
        hash $bv_affinity consistent;
{servers}
    }}
    server {{
        listen {address}:{port};
        # Streamlit's browser files, the same for every session and named by their content's hash:
        # served here, the .gz made ahead of time, and kept by the browser for a year (Streamlit's own
        # header for them). No replica spends CPU on them.
        location /static/ {{
            root {www};
            gzip_static on;
            add_header Cache-Control "public, immutable, max-age=31536000" always;
            add_header X-Backbone-Viz-Replica nginx always;
        }}
        location /media/ {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_cache media;
            proxy_cache_key $uri;
            proxy_cache_valid 200 2h;
            proxy_cache_lock on;
            add_header X-Backbone-Viz-Replica $upstream_addr always;
            add_header X-Backbone-Viz-Cache $upstream_cache_status always;
        }}
        location / {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_read_timeout 1d;
            proxy_send_timeout 1d;
            proxy_buffering off;
            # Uploads stream straight to the replica: no temporary file for nginx's worker to write.
            proxy_request_buffering off;
            add_header Set-Cookie "bv_replica=$bv_affinity; Path=/; HttpOnly; SameSite=Lax" always;
            add_header X-Backbone-Viz-Replica $upstream_addr always;
        }}
    }}
}}
"""

#: The content types nginx sends for Streamlit's files (its own ``mime.types`` may not be installed).
MIME_TYPES = {
    "text/html": "html",
    "text/css": "css",
    "application/javascript": "js mjs",
    "application/json": "json map",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpg jpeg",
    "image/gif": "gif",
    "image/x-icon": "ico",
    "font/woff": "woff",
    "font/woff2": "woff2",
    "font/ttf": "ttf",
    "text/plain": "txt",
    "application/wasm": "wasm",
}


def nginx_config(
    *,
    address: str,
    port: int,
    replica_ports: list[int],
    tmp: Path,
    www: Path,
    upload_mb: int = 20,
    media_mb: int = 256,
) -> str:
    """The nginx configuration that puts ``replica_ports`` (on 127.0.0.1) behind ``address:port``.

    Args:
        tmp: nginx's folder for its pid, log and temporary files.
        www: the folder holding the copy of Streamlit's files (``www/static/...``, see
            :func:`prepare_static`).
        upload_mb: the largest upload, as the app's ``server.maxUploadSize``.
        media_mb: the most disk the kept media files may take.
    """
    servers = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout={FAIL_TIMEOUT_S}s;" for p in replica_ports
    )
    types = "\n".join(f"        {kind} {ends};" for kind, ends in MIME_TYPES.items())
    return NGINX_CONF.format(
        tmp=tmp,
        upload_mb=upload_mb,
        media_mb=media_mb,
        servers=servers,
        types=types,
        address=address,
        port=port,
        www=www,
    )


def find_nginx(explicit: str | None = None) -> str | None:
    """The nginx program to run: ``explicit`` if given, else the one installed; ``None`` if there is none.

    Raises:
        NginxError: ``explicit`` names no program.
    """
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit
        raise NginxError(
            f"--nginx {explicit}: no such program.", "Give the path of nginx, or leave --nginx out."
        )
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def prepare_static(www: Path, source: Path | None = None) -> int:
    """Copies Streamlit's browser files to ``www/static`` with a ``.gz`` beside each text file.

    Streamlit's files live in the Python installation, which nginx's workers (an unprivileged user when
    nginx is started by root) may not be allowed to read; the copy is readable by everyone.

    Args:
        www: an empty or missing folder.
        source: Streamlit's ``static`` folder (its ``static`` subfolder is what ``/static/`` serves);
            default :func:`streamlit_static`.

    Returns:
        The bytes the copy and its ``.gz`` files take.
    """
    target = www / "static"
    shutil.copytree((source or streamlit_static()) / "static", target)
    total = 0
    www.chmod(0o755)
    for folder, _dirs, files in os.walk(target):
        Path(folder).chmod(0o755)
        for name in files:
            path = Path(folder) / name
            path.chmod(0o644)
            total += path.stat().st_size
            if path.suffix in _COMPRESSED and path.suffix not in _SKIP_GZIP and path.stat().st_size > 1024:
                packed = path.with_name(name + ".gz")
                packed.write_bytes(gzip.compress(path.read_bytes(), compresslevel=6, mtime=0))
                packed.chmod(0o644)
                total += packed.stat().st_size
    return total
