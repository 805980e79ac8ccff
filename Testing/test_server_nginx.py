"""Two ``waveseg serve`` processes behind a real nginx on loopback, configured from the shipped
template (scripts/nginx/waveseg.conf.template): a session stays on one backend (consistent hash
of X-WaveSeg-Session), and when its backend is killed the client continues on the other with
its masks. nginx runs as a non-daemon with a generated configuration (scripts/install_nginx.sh
installs Debian's nginx)."""

from __future__ import annotations

import http.client
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from server_harness import HANG_GUARD_S, ROOT, ProcessServer, bound_socket, health, wait_until
from waveseg.remote import RemoteSegmenter
from waveseg.sample_data import DEMO_BOX, DEMO_SLICE

TOKEN = "nginx-test-token-0123456789"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = ROOT / "scripts" / "nginx" / "waveseg.conf.template"
MAX_TRIES = 64  # sessions created until both backends hold one: (1/2)^63 to fail by chance

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (scripts/install_nginx.sh)")


def render(listen: int, backends: list[int], folder: Path) -> Path:
    servers = "\n".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=30s;" for port in backends)
    site = TEMPLATE.read_text().replace("@LISTEN@", f"127.0.0.1:{listen}").replace("@SERVERS@", servers)
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(f"worker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
                    f"events {{ worker_connections 256; }}\nhttp {{\n    access_log {folder / 'access.log'};\n{temp}\n{site}\n}}\n")
    return conf


class Nginx:
    """nginx in the foreground on a loopback port (picked again if another process took it)."""

    def __init__(self, backends: list[int], folder: Path) -> None:
        for _ in range(5):
            probe = bound_socket()
            self.port = probe.getsockname()[1]
            probe.close()  # nginx binds by number; a port taken meanwhile makes it exit, and another is tried
            conf = render(self.port, backends, folder)
            self.process = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"],
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                wait_until(lambda: health(self.port) == 200, "nginx to proxy /v1/health", HANG_GUARD_S,
                           alive=lambda: self.process.poll() is None)
                self.url = f"http://127.0.0.1:{self.port}"
                return
            except AssertionError:
                output = self.process.stdout.read() if self.process.poll() is not None else ""
                self.stop()
                if "Address already in use" not in output:
                    raise AssertionError(f"nginx did not start: {output}") from None
        raise AssertionError("no free loopback port for nginx in 5 tries")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def on_backend(port: int, session_id: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD_S)
    conn.request("GET", f"/v1/sessions/{session_id}", headers={"Authorization": f"Bearer {TOKEN}", "X-WaveSeg-Session": session_id})
    status = conn.getresponse().status
    conn.close()
    return status == 200


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nginx")
    tokens = folder / "tokens.txt"
    tokens.write_text(TOKEN + "\n")
    tokens.chmod(0o600)
    args = ("--token-file", str(tokens), "--model", "wave-gms", "--device", "cpu", "--session-cache-mb", "16")
    backends = [ProcessServer(*args), ProcessServer(*args)]
    proxy = Nginx([b.port for b in backends], folder)
    yield proxy, backends
    proxy.stop()
    for backend in backends:
        backend.stop()


def test_sessions_stay_on_one_backend_and_a_killed_backend_loses_no_masks(cluster, sample_volume):
    proxy, backends = cluster
    seg = RemoteSegmenter(proxy.url, token=TOKEN)
    sessions = {0: [], 1: []}
    for _ in range(MAX_TRIES):
        vs = seg.volume_session(sample_volume.array, spacing=sample_volume.spacing)
        homes = [n for n, b in enumerate(backends) if on_backend(b.port, vs.id)]
        assert len(homes) == 1, f"session {vs.id} is on backends {homes}"
        sessions[homes[0]].append(vs)
        if sessions[0] and sessions[1]:
            break
    assert sessions[0] and sessions[1], "all sessions hashed to one backend"
    for home, group in sessions.items():  # every action of a session reaches the backend holding it
        vs = group[0]
        vs.segment_slice(0, DEMO_SLICE, box=DEMO_BOX)
        report = vs.propagate(0, DEMO_SLICE)
        assert report.written and on_backend(backends[home].port, vs.id) and not vs.notices

    doomed, survivor = sessions[0][0], sessions[1][0]
    accepted = doomed.mask.copy()
    backends[0].kill()
    doomed.click((90, 108, DEMO_SLICE), positive=False, repropagate=False)  # nginx passes it to the living backend
    assert doomed.notices and "re-created" in doomed.notices[-1]
    others = [k for k in range(accepted.shape[0]) if k != DEMO_SLICE]
    assert np.array_equal(doomed.mask[others], accepted[others])
    assert on_backend(backends[1].port, doomed.id)
    copy = seg.attach(doomed.id, sample_volume.array, spacing=sample_volume.spacing)
    assert np.array_equal(copy.mask, doomed.mask)
    survivor.undo()  # the other backend's sessions never noticed
    assert not survivor.notices and survivor.can_redo
