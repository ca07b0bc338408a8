"""The bench's peers: Debian's nginx, rclone and wrk, installed when missing and run as
children of the bench, each stopped by its own pid."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from benchlib.harness import children_cpu, mounted_paths, wait_gone

#: Command -> the Debian package that provides it.
PACKAGES = {"rclone": "rclone", "nginx": "nginx", "wrk": "wrk"}
SBIN = ("/usr/sbin", "/sbin")


def which(command: str) -> str | None:
    found = shutil.which(command)
    if found is None:
        found = next((f"{d}/{command}" for d in SBIN if os.access(f"{d}/{command}", os.X_OK)), None)
    return found


def ensure_installed(commands: list[str]) -> None:
    """``apt-get install -y --no-install-recommends`` the packages of missing commands."""
    missing = sorted({PACKAGES[command] for command in commands if which(command) is None})
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    print(f"bench: installing {' '.join(missing)}", flush=True)
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def _wait_http(url: str, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer within {timeout}s")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


NGINX_CONF = """\
daemon off;
master_process on;
user root;
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        autoindex on;
        autoindex_exact_size on;
    }}
}}
"""


class Nginx:
    """nginx serving ``root`` (with ``autoindex``, ``sendfile``) from its own prefix and port.

    The access log is on, as the registry's is, so both servers pay for one.
    """

    def __init__(self, root: Path, prefix: Path, port: int) -> None:
        self.root = root
        self.prefix = prefix
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=self.prefix, port=self.port, root=self.root))
        nginx = which("nginx") or "nginx"
        with open(self.prefix / "stderr.log", "ab") as log:
            self.process = subprocess.Popen(
                [nginx, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.prefix / "e.log")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_http(self.url + "/", self.process, "nginx", 30.0)

    def pids(self) -> list[int]:
        """The master and its workers (for CPU accounting)."""
        if self.process is None:
            return []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            workers = [int(pid) for pid in children.read_text().split()]
        except OSError:
            workers = []
        return [self.process.pid, *workers]

    def stop(self) -> None:
        process, self.process = self.process, None
        _stop(process)


class RcloneMount:
    """``rclone mount :http: MNT --http-url URL --read-only``, default VFS (cache mode off)."""

    def __init__(self, url: str, mountpoint: Path, log: Path) -> None:
        self.url = url
        self.path = mountpoint
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        config = self.log.with_suffix(".conf")
        config.touch()  # an empty config of its own: nothing read from or written to ~
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    "rclone", "mount", ":http:", str(self.path), "--http-url", self.url + "/",
                    "--read-only", "--config", str(config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rclone mount exited with {self.process.returncode}")
            if str(self.path) in mounted_paths():
                os.listdir(self.path)
                return
            time.sleep(0.05)
        raise RuntimeError(f"rclone mount not ready within {timeout}s")

    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def stop(self) -> None:
        if str(self.path) in mounted_paths():
            done = subprocess.run(["fusermount3", "-u", str(self.path)], check=False)
            if done.returncode != 0:
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)], check=False)
        process, self.process = self.process, None
        if process is not None:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _stop(process)
            wait_gone(process.pid, 1.0)


#: wrk's summary as one JSON line, the end of every script below.
WRK_DONE = """\
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "socket_errors": %d, '
    .. '"status_errors": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""

#: wrk script: GETs of 1 MiB at random aligned offsets within the blob.
WRK_RANGES = """\
local size = {piece}
local pieces = {pieces}
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  math.randomseed({seed} + id)
end
function request()
  local first = math.random(0, pieces - 1) * size
  -- A headers table replaces wrk.headers (the -H ones: the registry's token): copy them.
  local headers = {{}}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Range"] = "bytes=" .. first .. "-" .. (first + size - 1)
  return wrk.format("GET", nil, headers)
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    bytes: int
    errors: int
    p50_ms: float
    p99_ms: float
    #: CPU seconds of wrk itself (RUSAGE_CHILDREN), to show it was not the bottleneck.
    wrk_cpu: float
    server_cpu: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def ranged_load(
    url: str,
    script_dir: Path,
    blob_size: int,
    piece: int,
    *,
    connections: int,
    threads: int,
    seconds: int,
    seed: int,
    server_cpu: Callable[[], float],
) -> LoadResult:
    """``wrk`` with ``connections`` keep-alive connections of random ``piece``-sized Range GETs."""
    script = script_dir / f"ranges-{seed}.lua"
    script.write_text(WRK_RANGES.format(piece=piece, pieces=blob_size // piece, seed=seed))
    return wrk_load(
        [url], script, connections=connections, threads=threads, seconds=seconds,
        server_cpu=server_cpu,
    )  # fmt: skip


def get_load(
    urls: list[str],
    script_dir: Path,
    *,
    connections: int,
    threads: int,
    seconds: int,
    server_cpu: Callable[[], float],
) -> LoadResult:
    """Plain GETs of each URL, one ``wrk`` per URL at once (``connections`` each)."""
    script = script_dir / "gets.lua"
    script.write_text("")
    return wrk_load(
        urls, script, connections=connections, threads=threads, seconds=seconds,
        server_cpu=server_cpu,
    )  # fmt: skip


def wrk_load(
    urls: list[str],
    script: Path,
    *,
    connections: int,
    threads: int,
    seconds: int,
    server_cpu: Callable[[], float],
) -> LoadResult:
    """One ``wrk`` per URL, all at once, each with ``script`` (its requests; may be empty)
    and ``connections`` keep-alive connections; their figures summed."""
    with_summary = script.with_suffix(".done.lua")
    with_summary.write_text(script.read_text() + WRK_DONE)
    cpu_before, server_before = children_cpu(), server_cpu()
    running = [
        subprocess.Popen(
            [
                "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                "--timeout", "30s", "-s", str(with_summary), url,
                # The registry's token; nginx ignores it.
                "-H", f"Authorization: Bearer {os.environ['ARTFS_TOKEN']}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]  # fmt: skip
    outputs = []
    try:
        for process in running:
            out, err = process.communicate(timeout=seconds + 120)
            if process.returncode != 0:
                raise RuntimeError(f"wrk exited {process.returncode}: {err[-2000:]}")
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait()
    wrk_cpu, server_used = children_cpu() - cpu_before, server_cpu() - server_before
    return LoadResult(
        requests=sum(summary["requests"] for summary in outputs),
        # They ran at once: the longest is the wall time of all.
        seconds=max(summary["duration_us"] for summary in outputs) / 1e6,
        bytes=sum(summary["bytes"] for summary in outputs),
        errors=sum(summary["socket_errors"] + summary["status_errors"] for summary in outputs),
        # The slowest of the wrks' percentiles: an upper bound of the joint one.
        p50_ms=max(summary["p50_us"] for summary in outputs) / 1e3,
        p99_ms=max(summary["p99_us"] for summary in outputs) / 1e3,
        wrk_cpu=wrk_cpu,
        server_cpu=server_used,
    )
