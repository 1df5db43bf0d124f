"""deploy/: the Compose file, the nginx configuration with cookie affinity, and the local
topology of deploy/local.py (two app replicas behind Debian's nginx)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bench.class_bench import read_access_log, routes
from deploy import local

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = local.find_nginx()
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (make class installs it)")


def _compose_cmd() -> list[str] | None:
    """`docker compose` (the CLI plugin), or a standalone Compose v2 binary; None if neither
    runs. `config` needs no Docker daemon."""
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        try:
            out = subprocess.run(cmd + ["version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and re.search(r"v?2\.\d+", out.stdout):
            return cmd
    return None


COMPOSE = _compose_cmd()


def compose_config(env: dict[str, str] | None = None, *extra: str) -> dict:
    out = subprocess.run(COMPOSE + ["-f", str(DEPLOY / "compose.yaml"), *extra, "config",
                                    "--format", "json"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, **(env or {})))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# ---------------------------------------------------------------- the nginx configuration


def test_affinity_is_a_cookie_hashed_consistently():
    aff = (DEPLOY / "nginx" / "affinity.conf").read_text()
    site = (DEPLOY / "nginx" / "site.conf").read_text()
    # no cookie: a fresh random key, handed back as the cookie; with it: the cookie
    assert re.search(r'map \$cookie_lab_affinity \$lab_affinity_key \{\s*""\s+\$request_id;\s*'
                     r"default\s+\$cookie_lab_affinity;", aff)
    assert re.search(r'""\s+"lab_affinity=\$request_id; Path=/;', aff)
    assert "add_header Set-Cookie $lab_set_cookie always;" in site
    for conf in ((DEPLOY / "nginx" / "compose.conf").read_text(),
                 local.nginx_conf(Path("/tmp/x"), [8601, 8602], 8500)):
        assert re.search(r"upstream diffusion_lab \{\s*hash \$lab_affinity_key consistent;", conf)
        assert "ip_hash" not in conf
    # the websocket and a lesson-long read timeout
    assert "proxy_set_header Upgrade $http_upgrade;" in site
    assert "proxy_set_header Connection $lab_connection_upgrade;" in site
    timeout = re.search(r"proxy_read_timeout (\d+)s;", site)
    assert timeout and int(timeout.group(1)) >= 3600
    # the log the bench reads: the key and the replica of every request
    assert "key=$lab_affinity_key upstream=$upstream_addr" in aff


def test_upload_limit_matches_streamlit():
    site = (DEPLOY / "nginx" / "site.conf").read_text()
    m = re.search(r"client_max_body_size (\d+)m;", site)
    assert m, "site.conf sets no client_max_body_size"
    assert int(m.group(1)) == local.upload_limit_mb() + 1


def test_plan_keeps_threads_within_the_cores():
    p = local.make_plan(2, n_cores=2)
    assert (p.max_runs, p.threads, p.busy_cores, p.fits) == (1, 1, 2, True)
    assert p.env() == {"DIFFUSION_LAB_MAX_RUNS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert local.make_plan(2, max_runs=2, n_cores=16).threads == 4
    assert not local.make_plan(4, max_runs=2, threads=2, n_cores=8).fits
    with pytest.raises(ValueError):
        local.make_plan(0)


@needs_nginx
def test_generated_config_passes_nginx_t(tmp_path):
    local.prepare_run_dir(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(local.nginx_conf(tmp_path, [8601, 8602, 8603], 8500))
    r = local.nginx_test(NGINX, conf)
    assert r.returncode == 0, r.stderr
    # and nginx -t does refuse a broken one
    conf.write_text(conf.read_text().replace("hash $lab_affinity_key consistent;", "hash;"))
    assert local.nginx_test(NGINX, conf).returncode != 0


@needs_nginx
def test_compose_proxy_config_passes_nginx_t(tmp_path):
    """The Compose proxy's file, with its container paths and the service name made local."""
    text = (DEPLOY / "nginx" / "compose.conf").read_text()
    assert "server app:8501;" in text and "include /etc/nginx/lab/site.conf;" in text
    text = (text.replace("/etc/nginx/lab/", f"{DEPLOY / 'nginx'}/")
            .replace("server app:8501;", "server 127.0.0.1:8501;")
            .replace("listen 80;", "listen 127.0.0.1:8500;")
            .replace("/var/log/nginx/access.log", str(tmp_path / "access.log")))
    local.prepare_run_dir(tmp_path)
    main = local.nginx_conf(tmp_path, [1], 1)
    main = main[:main.index("http {")] + "http {\n" + text + "}\n"
    conf = tmp_path / "nginx.conf"
    conf.write_text(main)
    r = local.nginx_test(NGINX, conf)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- the Compose file


def test_compose_file_mounts_what_exists():
    text = (DEPLOY / "compose.yaml").read_text()
    mounts = re.findall(r"- \./(nginx/[\w.]+):/etc/nginx/", text)
    assert sorted(mounts) == ["nginx/affinity.conf", "nginx/compose.conf", "nginx/site.conf"]
    assert all((DEPLOY / m).is_file() for m in mounts)


@pytest.mark.skipif(COMPOSE is None, reason="Docker Compose v2 is not installed (docker compose "
                                            "or docker-compose); `config` needs no daemon")
def test_docker_compose_config_validates():
    cfg = compose_config()
    app, proxy = cfg["services"]["app"], cfg["services"]["proxy"]
    assert app["deploy"]["replicas"] == 2
    assert Path(app["build"]["context"]) == ROOT and app["build"]["dockerfile"] == "Dockerfile"
    assert app["environment"]["DIFFUSION_LAB_MAX_RUNS"] == "1"
    assert app["environment"]["OMP_NUM_THREADS"] == "1"
    assert proxy["depends_on"]["app"]["condition"] == "service_healthy"
    assert [p["target"] for p in proxy["ports"]] == [80]
    assert {v["target"] for v in proxy["volumes"]} == {
        "/etc/nginx/lab/affinity.conf", "/etc/nginx/lab/site.conf", "/etc/nginx/conf.d/default.conf"}
    assert "app-gpu" not in cfg["services"]  # only with --profile gpu
    assert compose_config({"LAB_REPLICAS": "4"})["services"]["app"]["deploy"]["replicas"] == 4
    gpu = compose_config({}, "--profile", "gpu")["services"]["app-gpu"]
    assert gpu["networks"]["default"]["aliases"] == ["app"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert gpu["environment"]["DIFFUSION_LAB_MAX_RUNS"] == "1"


# ---------------------------------------------------------------- the bench's log reading


def test_routes_find_a_session_that_moved(tmp_path):
    log = tmp_path / "access.log"
    line = ('2026-01-01T00:00:00+00:00 key={k} upstream={u} status={s} rt=0.001 bytes=10 '
            'req="GET {uri}"\n')
    log.write_text(
        line.format(k="aaa", u="127.0.0.1:1", s=200, uri="/Restore")
        + line.format(k="aaa", u="127.0.0.1:1", s=101, uri="/_stcore/stream")
        + line.format(k="bbb", u="127.0.0.1:1", s=200, uri="/")
        + line.format(k="bbb", u="127.0.0.1:2", s=200, uri="/media/x.png")
        + line.format(k="ccc", u="-", s=499, uri="/")
        + "not a log line\n")
    by_key = routes(read_access_log(log))
    assert by_key["aaa"]["upstreams"] == {"127.0.0.1:1"} and by_key["aaa"]["websockets"] == 1
    assert by_key["bbb"]["upstreams"] == {"127.0.0.1:1", "127.0.0.1:2"}  # moved
    assert by_key["bbb"]["media"] == 1
    assert by_key["ccc"]["upstreams"] == set()


# ---------------------------------------------------------------- the local topology, running


def _get(url: str, path: str, cookie: str | None = None, upgrade: bool = False):
    host, port = url.removeprefix("http://").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=20)
    headers = {"Cookie": f"{local.AFFINITY_COOKIE}={cookie}"} if cookie else {}
    if upgrade:
        headers.update({"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    ours = [v for v in r.msg.get_all("Set-Cookie") or [] if v.startswith(local.AFFINITY_COOKIE + "=")]
    status, set_cookie = r.status, (ours[0] if ours else None)
    if not upgrade:
        r.read()
    c.close()
    return status, set_cookie


@needs_nginx
@pytest.mark.system
def test_local_topology_keeps_a_cookie_on_one_replica(tmp_path):
    plan = local.make_plan(2, max_runs=1, threads=1)
    env = {"DIFFUSION_LAB_USER_MODELS": str(tmp_path / "user_models")}
    with local.local_class(tmp_path / "class", plan, env=env) as top:
        procs = [top.nginx] + [s.proc for s in top.replicas]
        keys = []
        for _ in range(20):  # new visitors: each gets a fresh cookie
            status, set_cookie = _get(top.url, "/")
            assert status == 200 and set_cookie
            keys.append(re.match(rf"{local.AFFINITY_COOKIE}=(\w+);", set_cookie).group(1))
        assert len(set(keys)) == len(keys)
        for k in keys:  # returning visitors: no new cookie
            for path in ("/", "/_stcore/health", "/_stcore/host-config"):
                status, set_cookie = _get(top.url, path, cookie=k)
                assert status == 200 and set_cookie is None
        status, _ = _get(top.url, "/_stcore/stream", cookie=keys[0], upgrade=True)
        assert status == 101  # the websocket goes through, with its key
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            by_key = routes(read_access_log(top.access_log))
            if by_key.get(keys[0], {}).get("websockets"):
                break
            time.sleep(0.2)
        assert by_key[keys[0]]["websockets"] == 1
        used = set()
        for k in keys:
            assert len(by_key[k]["upstreams"]) == 1, by_key[k]  # every request on one replica
            assert by_key[k]["requests"] >= 4
            used |= by_key[k]["upstreams"]
        # 20 random keys on 2 replicas: both are used (all on one: p < 1e-4 even for a 60:40 ring)
        assert {top.replica_of(u) for u in used} == {0, 1}
    assert all(p.poll() is not None for p in procs), "a process outlived the topology"
