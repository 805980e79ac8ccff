"""TLS through uvicorn's certificate options (``waveseg serve --ssl-certfile --ssl-keyfile``): the
client verifies the server's certificate; plain HTTP and an untrusted certificate are clear errors."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import numpy as np
import pytest

from server_harness import ProcessServer
from waveseg.remote import RemoteSegmenter, ServerUnreachableError
from waveseg.sample_data import DEMO_BOX, DEMO_SLICE

TOKEN = "tls-test-token-0123456789abc"
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key, tokens = folder / "cert.pem", folder / "key.pem", folder / "tokens.txt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    tokens.write_text(TOKEN + "\n")
    tokens.chmod(0o600)
    trusted = ssl.create_default_context(cafile=str(cert))
    srv = ProcessServer("--host", "127.0.0.1", "--token-file", str(tokens), "--model", "wave-gms", "--device", "cpu",
                        "--ssl-certfile", str(cert), "--ssl-keyfile", str(key), ssl_context=trusted)
    yield srv, trusted
    srv.stop()


def test_a_session_over_tls_and_clear_errors_without_it(tls_server, sample_volume):
    srv, trusted = tls_server
    assert srv.url.startswith("https://")
    seg = RemoteSegmenter(srv.url, token=TOKEN, ssl_context=trusted)
    vs = seg.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    assert vs.segment_slice(0, DEMO_SLICE, box=DEMO_BOX).any() and np.count_nonzero(vs.mask) == np.count_nonzero(vs.mask[DEMO_SLICE])
    vs.close()
    with pytest.raises(ServerUnreachableError, match="certificate"):
        RemoteSegmenter(srv.url, token=TOKEN)  # the system's trusted certificates do not include this one
    with pytest.raises(ServerUnreachableError):
        RemoteSegmenter(srv.url.replace("https://", "http://"), token=TOKEN)  # plain HTTP to a TLS port
