"""The site server against real clients on loopback: remote masks equal local ones for the same
prompts, and every fault the issue lists gets a clear error, no traceback, no crash, no memory left.

The server runs in a thread of this process (``server_harness.ThreadServer``), so the local
comparison uses the very same loaded model; the clock that expires sessions is the test's.
"""

from __future__ import annotations

import http.client
import json
import threading
import warnings

import numpy as np
import pytest

from server_harness import HANG_GUARD_S, ThreadServer, wait_until
from waveseg.remote import (AuthenticationError, RemoteSegmenter, ServerUnreachableError, SessionConflictError, VersionMismatchError)
from waveseg.remote.wire import encode_mask, encode_volume
from waveseg.sample_data import DEMO_BOX, DEMO_SLICE

TOKEN = "test-token-0123456789abcdef"
OTHER_TOKEN = "other-token-0123456789abcdef"
BRAIN_CENTRE = (90, 108, DEMO_SLICE)  # (i, j, k) inside the brain on the demo slice


class Clock:
    """The server's time source, moved by the test (sessions expire without waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("profiles")
        mp.setenv("WAVESEG_PROFILES_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def pool(profiles):
    from waveseg.server.models import ModelPool

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pool = ModelPool(("wave-gms",), "cpu")
        pool.segmenter(None, None)
    return pool


@pytest.fixture(scope="module")
def clock():
    return Clock()


@pytest.fixture(scope="module")
def server(pool, clock):
    from waveseg.server.config import ServerConfig

    config = ServerConfig(tokens=(TOKEN, OTHER_TOKEN), models=("wave-gms",), device="cpu", session_timeout_s=600, clock=clock,
                          max_body_mb=8, max_volume_mb=16, session_cache_mb=16)
    srv = ThreadServer(config, pool)
    yield srv
    srv.stop()


@pytest.fixture()
def remote(server):
    seg = RemoteSegmenter(server.url, token=TOKEN)
    yield seg
    seg.close()


def local_session(pool, volume):
    return pool.segmenter(None, None).volume_session(volume.array, spacing=volume.spacing, prefetch=False)


def raw(port: int, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None, token: str | None = TOKEN):
    """(status, parsed JSON or text) of one plain HTTP request, as curl would send it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD_S)
    all_headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request(method, path, body=body.encode() if isinstance(body, str) else body, headers={**all_headers, **(headers or {})})
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


def assert_clear_error(status: int, reply, expected_status: int, code: str, *words: str) -> None:
    assert status == expected_status, (status, reply)
    assert isinstance(reply, dict) and reply["code"] == code, reply
    assert "Traceback" not in reply["error"] and 'File "' not in reply["error"]
    for word in words:
        assert word in reply["error"], reply["error"]


# -- the same masks as local mode -----------------------------------------------------------------
def test_remote_gives_the_same_masks_as_local_for_box_clicks_propagation_and_undo(remote, pool, sample_volume):
    local = local_session(pool, sample_volume)
    vs = remote.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    steps = [
        ("segment_slice", (0, DEMO_SLICE), {"box": DEMO_BOX}),
        ("propagate", (0, DEMO_SLICE), {}),
        ("click", (BRAIN_CENTRE,), {"positive": False, "repropagate": False}),
        ("click", ((60, 100, DEMO_SLICE + 2),), {"positive": True, "repropagate": True}),
        ("undo", (), {}), ("redo", (), {}), ("undo", (), {}),
        ("box3d", ((25, 25, 3), (160, 195, 12)), {}),
        ("accept", (0, 4), {}), ("clear", (), {}), ("undo", (), {}),
    ]
    for name, args, kwargs in steps:
        local_out = getattr(local, name)(*args, **kwargs)
        remote_out = getattr(vs, name)(*args, **kwargs)
        assert np.array_equal(vs.mask, local.mask), f"masks differ after {name}{args}"
        assert (vs.can_undo, vs.can_redo, vs.locked) == (local.can_undo, local.can_redo, local.locked), name
        if hasattr(local_out, "written"):
            assert (remote_out.written, remote_out.stopped, remote_out.cancelled) == (local_out.written, local_out.stopped, local_out.cancelled)
    assert vs.mask.any()
    fresh = remote.attach(vs.id, sample_volume.array, spacing=sample_volume.spacing)  # the server's own copy agrees
    assert np.array_equal(fresh.mask, local.mask)
    vs.close()
    local.close()


def test_a_reply_carries_only_the_changed_slices(remote, server, sample_volume):
    vs = remote.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    reply = vs.transport.request("POST", f"/v1/sessions/{vs.id}/segment_slice",
                                 {"revision": vs.revision, "axis": 0, "index": DEMO_SLICE, "box": list(DEMO_BOX)}, headers=vs._headers())
    assert reply["changed"] == [DEMO_SLICE] and reply["slices"]["shape"] == [1, *sample_volume.array.shape[1:]]
    assert vs.upload_bytes < sample_volume.array.nbytes  # compressed on the way up
    vs.close()


def test_progress_is_streamed_and_a_cancel_keeps_the_slices_done(remote, sample_volume):
    vs = remote.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    seen = []
    report = vs.box3d((25, 25, 0), (160, 195, 15), progress=lambda done, planned: seen.append((done, planned)),
                      cancel=lambda: len(seen) >= 2)
    assert report.cancelled and seen[:2] == [(1, 15), (2, 15)]
    assert 2 <= len(report.written) < 15 and vs.mask[report.written].any(axis=(1, 2)).all()
    vs.undo()
    assert not vs.mask.any()
    vs.close()


# -- authentication and versions ------------------------------------------------------------------
def test_wrong_or_missing_token_is_refused_clearly(server):
    with pytest.raises(AuthenticationError, match="wrong token"):
        RemoteSegmenter(server.url, token="not-the-token-0123456789")
    with pytest.raises(AuthenticationError, match="needs a token"):
        RemoteSegmenter(server.url)
    assert_clear_error(*raw(server.port, "GET", "/v1/models", token=None), 401, "unauthorized", "token")
    assert_clear_error(*raw(server.port, "GET", "/v1/models", headers={"Authorization": "Basic abc"}, token=None), 401, "unauthorized")


def test_a_session_is_invisible_to_another_token(remote, server, sample_volume):
    vs = remote.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    status, reply = raw(server.port, "GET", f"/v1/sessions/{vs.id}", headers={"X-WaveSeg-Session": vs.id}, token=OTHER_TOKEN)
    assert_clear_error(status, reply, 404, "unknown_session")
    vs.close()


def test_version_mismatch_is_named_on_both_sides(server, monkeypatch):
    assert_clear_error(*raw(server.port, "GET", "/v1/models", headers={"X-WaveSeg-API": "99"}), 400, "version_mismatch", "API 99", "API 1")
    import waveseg.remote.segmenter as segmenter_module

    monkeypatch.setattr(segmenter_module, "API_VERSION", 2)  # a newer client against this server
    with pytest.raises(VersionMismatchError, match=r"speaks WaveSeg API \[1\].*client API 2"):
        RemoteSegmenter(server.url, token=TOKEN)


def test_models_profiles_and_openapi_are_served(remote, server):
    assert remote.catalog["models"] == [{"name": "wave-gms", "default": True}] and remote.catalog["device"] == "cpu"
    status, schema = raw(server.port, "GET", "/v1/openapi.json")
    assert status == 200 and "/v1/sessions/{session_id}/click" in schema["paths"]


# -- bad input --------------------------------------------------------------------------------------
def test_malformed_json_and_bad_fields_get_clear_errors(remote, server, sample_volume):
    vs = remote.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    h = {"X-WaveSeg-Session": vs.id, "Content-Type": "application/json"}
    assert_clear_error(*raw(server.port, "POST", f"/v1/sessions/{vs.id}/click", "{not json", h), 422, "invalid_request", "malformed JSON")
    assert_clear_error(*raw(server.port, "POST", f"/v1/sessions/{vs.id}/click", '{"ijk": [1, 2]}', h), 422, "invalid_request", "ijk")
    assert_clear_error(*raw(server.port, "POST", f"/v1/sessions/{vs.id}/segment_slice", '{"index": 99, "box": [1, 2, 30, 40]}', h),
                       422, "invalid_input", "past the end")
    assert_clear_error(*raw(server.port, "POST", f"/v1/sessions/{vs.id}/undo", "{}", {"Content-Type": "application/json"}),
                       400, "session_header", "X-WaveSeg-Session")
    vs.close()


def _create(port: int, session_id: str, payload: bytes, header: dict, **spec):
    return raw(port, "POST", "/v1/sessions", payload, {"X-WaveSeg-Session": session_id,
                                                        "X-WaveSeg-Spec": json.dumps({"array": header, **spec})})


def test_oversized_and_corrupt_uploads_are_refused(server, sample_volume):
    header, payload = encode_volume(sample_volume.array)
    port = server.port
    huge = np.zeros((64, 512, 512), np.int16)  # 32 MiB: over this server's 16 MiB volume limit, yet compresses tiny
    huge_header, huge_payload = encode_volume(huge)
    assert_clear_error(*_create(port, "s" * 20, huge_payload, huge_header), 422, "bad_payload", "at most 16 MiB")
    too_long = b"\0" * (9 * 2**20)  # a body over the 8 MiB request limit
    assert_clear_error(*_create(port, "t" * 20, too_long, header), 413, "too_large", "8 MiB")
    assert_clear_error(*_create(port, "u" * 20, b"garbage" * 100, header), 422, "bad_payload", "not valid zlib")
    assert_clear_error(*_create(port, "v" * 20, payload[: len(payload) // 2], header), 422, "bad_payload")
    bomb = {**header, "shape": [1, 8, 8]}  # announces 128 bytes, inflates to far more
    assert_clear_error(*_create(port, "w" * 20, payload, bomb), 422, "bad_payload", "more")
    assert_clear_error(*_create(port, "x" * 20, payload, {**header, "dtype": "object"}), 422, "bad_payload", "dtype")
    assert_clear_error(*_create(port, "y" * 20, payload, header, profile="../../etc/passwd"), 422, "invalid_input", "profile name")
    assert_clear_error(*_create(port, "z" * 20, payload, header, profile="x.safetensors"), 422, "invalid_input", "profile name")
    assert_clear_error(*_create(port, "q" * 20, payload, header, model="/etc/passwd"), 422, "invalid_input", "does not offer")
    assert_clear_error(*raw(port, "POST", "/v1/sessions", payload, {"X-WaveSeg-Session": "short", "X-WaveSeg-Spec": "{}"}),
                       400, "session_header")
    assert_clear_error(*raw(port, "POST", "/v1/sessions", payload, {"X-WaveSeg-Session": "k" * 20, "X-WaveSeg-Spec": "{bad"}),
                       422, "invalid_request", "X-WaveSeg-Spec")
    assert len(server.state.store) == 0 or all(len(s) == 32 for s in server.state.store._sessions)  # nothing half-made


def test_a_corrupt_slice_mask_is_refused_and_changes_nothing(remote, server, sample_volume):
    vs = remote.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    header, payload = encode_mask(np.ones((5, 5), bool))
    h = {"X-WaveSeg-Session": vs.id, "X-WaveSeg-Array": json.dumps(header)}
    assert_clear_error(*raw(server.port, "PUT", f"/v1/sessions/{vs.id}/slices/0/3", payload, h), 422, "invalid_input", "shape")
    assert_clear_error(*raw(server.port, "PUT", f"/v1/sessions/{vs.id}/slices/0/3", b"xx", h), 422, "bad_payload")
    vs.refresh()
    assert not vs.mask.any() and not vs.can_undo
    vs.close()


# -- sessions that end --------------------------------------------------------------------------------
def test_unknown_and_expired_sessions_are_told_apart_and_the_client_recovers(remote, server, clock, sample_volume):
    status, reply = raw(server.port, "GET", "/v1/sessions/" + "n" * 32, headers={"X-WaveSeg-Session": "n" * 32})
    assert_clear_error(status, reply, 404, "unknown_session", "unknown session")
    notices = []
    vs = remote.volume_session(sample_volume.array, spacing=sample_volume.spacing, on_notice=notices.append)
    vs.segment_slice(0, DEMO_SLICE, box=DEMO_BOX)
    kept = vs.mask.copy()
    old_id = vs.id
    clock.now += server.state.config.session_timeout_s + 1
    status, reply = raw(server.port, "GET", f"/v1/sessions/{old_id}", headers={"X-WaveSeg-Session": old_id})
    assert_clear_error(status, reply, 410, "session_ended", "expired after 600 s")
    assert not server.state.store.exists(old_id)
    vs.accept(0, DEMO_SLICE - 1)  # the next action re-creates the session from the client's copy
    assert vs.id != old_id and len(notices) == 1 and "re-created" in notices[0]
    assert np.array_equal(vs.mask, kept) and (0, DEMO_SLICE) in vs.locked and (0, DEMO_SLICE - 1) in vs.locked
    vs.close()


def test_memory_bound_closes_the_least_recently_used_session(pool, sample_volume):
    from waveseg.server.config import ServerConfig

    one = sample_volume.array.nbytes * 3 + 2 * 2**20  # volume, mask, shadow and a 2 MiB cache
    config = ServerConfig(models=("wave-gms",), device="cpu", session_cache_mb=2, max_sessions_mb=1.5 * one / 2**20)
    srv = ThreadServer(config, pool)
    try:
        seg = RemoteSegmenter(srv.url)
        first = seg.volume_session(sample_volume.array, spacing=sample_volume.spacing)
        first.segment_slice(0, DEMO_SLICE, box=DEMO_BOX)
        second = seg.volume_session(sample_volume.array, spacing=sample_volume.spacing)
        assert srv.state.store.exists(second.id) and not srv.state.store.exists(first.id)
        status, reply = raw(srv.port, "GET", f"/v1/sessions/{first.id}", headers={"X-WaveSeg-Session": first.id}, token=None)
        assert_clear_error(status, reply, 410, "session_ended", "free server memory")
        second.close()
        first.undo()  # recovers (the undo itself has nothing to undo in the new session)
        assert first.mask[DEMO_SLICE].any() and first.notices
        first.close()
        assert len(srv.state.store) == 0 and srv.state.store.total_bytes() == 0
    finally:
        srv.stop()


def test_a_client_disconnecting_mid_propagation_cancels_it_and_leaves_the_session_usable(server, sample_volume):
    seg = RemoteSegmenter(server.url, token=TOKEN)
    vs = seg.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    session = server.state.store.get(vs.id, 0)
    noticed = threading.Event()

    def hold_until_noticed(session_id, done, planned):  # the first slice waits until the server saw the client go
        if session_id == vs.id and done == 1:
            wait_until(session.cancel.is_set, "the server to notice the disconnect", HANG_GUARD_S)
            noticed.set()

    server.state.config.on_progress = hold_until_noticed
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HANG_GUARD_S)
        body = json.dumps({"corner0": [25, 25, 0], "corner1": [160, 195, 15]})
        conn.request("POST", f"/v1/sessions/{vs.id}/box3d", body, {"Authorization": f"Bearer {TOKEN}", "X-WaveSeg-Session": vs.id,
                                                                  "Content-Type": "application/json"})
        response = conn.getresponse()
        assert json.loads(response.readline())["event"] == "progress"
        conn.sock.shutdown(2)
        conn.close()  # gone mid-propagation
        wait_until(lambda: noticed.is_set() and not session.busy, "the propagation to stop", HANG_GUARD_S)
    finally:
        server.state.config.on_progress = None
    assert session.last_report["cancelled"] and len(session.last_report["written"]) == 1
    vs.refresh()  # the other connection's client sees what was done, one undoable step
    assert vs.mask[DEMO_SLICE].any() and vs.can_undo
    vs.undo()
    assert not vs.mask.any()
    vs.close()


def test_two_clients_on_one_session_are_told_and_brought_up_to_date(server, sample_volume):
    first = RemoteSegmenter(server.url, token=TOKEN).volume_session(sample_volume.array, spacing=sample_volume.spacing)
    second = RemoteSegmenter(server.url, token=TOKEN).attach(first.id, sample_volume.array, spacing=sample_volume.spacing)
    second.segment_slice(0, DEMO_SLICE, box=DEMO_BOX)
    with pytest.raises(SessionConflictError, match="another client"):
        first.click(BRAIN_CENTRE, positive=False, repropagate=False)
    assert np.array_equal(first.mask, second.mask) and first.mask.any()  # brought up to date, nothing applied twice
    first.click(BRAIN_CENTRE, positive=False, repropagate=False)  # now it goes through

    session = server.state.store.get(first.id, 0)
    release = threading.Event()
    server.state.config.on_progress = lambda sid, done, planned: release.wait(HANG_GUARD_S) if sid == first.id else None
    try:
        runner = threading.Thread(target=lambda: first.propagate(0, DEMO_SLICE))
        runner.start()
        wait_until(lambda: session.busy, "the propagation to start", HANG_GUARD_S)
        with pytest.raises(SessionConflictError, match="still running another action"):
            second.undo()
        release.set()
        runner.join()
    finally:
        server.state.config.on_progress = None
        release.set()
    second.refresh()
    assert np.array_equal(first.mask, second.mask)
    first.close()


def test_a_server_restarted_under_a_client_keeps_its_masks(pool, sample_volume):
    from waveseg.server.config import ServerConfig

    config = ServerConfig(models=("wave-gms",), device="cpu", session_cache_mb=16)
    srv = ThreadServer(config, pool)
    port = srv.port
    seg = RemoteSegmenter(srv.url)
    vs = seg.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    vs.segment_slice(0, DEMO_SLICE, box=DEMO_BOX)
    vs.propagate(0, DEMO_SLICE)
    accepted, locked = vs.mask.copy(), set(vs.locked)
    srv.stop()
    with pytest.raises(ServerUnreachableError, match="cannot reach the WaveSeg server"):
        vs.click(BRAIN_CENTRE, positive=False, repropagate=False)
    assert np.array_equal(vs.mask, accepted)  # nothing lost while it was down
    srv = ThreadServer(config, pool, port=port)  # the same address, a new server with no sessions
    try:
        vs.click(BRAIN_CENTRE, positive=False, repropagate=False)
        assert "re-created" in vs.notices[-1]
        others = [k for k in range(accepted.shape[0]) if k != DEMO_SLICE]
        assert np.array_equal(vs.mask[others], accepted[others]) and not np.array_equal(vs.mask[DEMO_SLICE], accepted[DEMO_SLICE])
        assert locked <= vs.locked
        server_copy = seg.attach(vs.id, sample_volume.array, spacing=sample_volume.spacing)
        assert np.array_equal(server_copy.mask, vs.mask)
        vs.close()
        assert len(srv.state.store) == 0
    finally:
        srv.stop()


def test_serve_refuses_another_address_without_a_token_and_weak_tokens(tmp_path, capsys):
    from waveseg.cli import main

    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "refusing to listen on 0.0.0.0 without a token" in capsys.readouterr().err
    weak = tmp_path / "tokens.txt"
    weak.write_text("short\n")
    assert main(["serve", "--host", "0.0.0.0", "--token-file", str(weak)]) == 2
    assert "shorter than 16" in capsys.readouterr().err
    assert main(["serve", "--token-file", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read the token file" in capsys.readouterr().err


# -- adaptation as a server job ----------------------------------------------------------------------
def test_adaptation_runs_as_a_server_job_and_its_profile_is_chosen_by_name(remote, server, profiles, sample_volume):
    vs = remote.volume_session(sample_volume.array, spacing=sample_volume.spacing)
    # white matter, which the base model does not get from a box (Testing/test_adaptation.py), so
    # that the do-no-harm gate keeps the profile
    from waveseg.io import read_image
    from waveseg.sample_data import SAMPLE_BRAIN_MASK

    white_matter = (read_image(SAMPLE_BRAIN_MASK).array > 0) & (sample_volume.array > 100)
    for k in range(0, white_matter.shape[0], 2):
        vs.set_slice_mask(0, k, white_matter[k])
    with pytest.raises(Exception, match="profile name"):
        remote.start_adaptation(vs, "../escape", steps=2)
    # the most steps the server takes and an hour: only the cancel can end this job soon, however fast the machine
    cancelled = remote.start_adaptation(vs, "site-brain-cancelled", steps=5000, time_budget_s=3600)
    remote.cancel_adaptation(cancelled)
    assert remote.wait_adaptation(cancelled)["state"] == "cancelled"
    job = remote.start_adaptation(vs, "site-brain", structure="brain", steps=20, time_budget_s=3600)
    messages = []
    final = remote.wait_adaptation(job, progress=messages.append)
    assert final["state"] == "done", messages
    assert [m["event"] for m in messages][-1] == "done" and messages[-1]["kept"], messages[-1]
    assert sorted(p.name for p in profiles.iterdir()) == ["site-brain.safetensors"]  # nothing from the cancelled run
    listed = {p["name"]: p for p in remote.models()["profiles"]}
    assert listed["site-brain"]["structure"] == "brain"
    adapted = RemoteSegmenter(server.url, token=TOKEN, profile="site-brain").volume_session(sample_volume.array, spacing=sample_volume.spacing)
    assert adapted.segment_slice(0, DEMO_SLICE, box=DEMO_BOX).any()
    adapted.close()
    vs.close()


# -- the command line with --server --------------------------------------------------------------------
def test_cli_segment_and_segment3d_with_server_write_the_local_masks(server, pool, sample_volume, tmp_path, capsys):
    from waveseg.cli import main
    from waveseg.io import read_image
    from waveseg.sample_data import SAMPLE_T1

    token = tmp_path / "token.txt"
    token.write_text(TOKEN + "\n")
    remote_out, local_out = tmp_path / "remote.nii.gz", tmp_path / "local.nii.gz"
    box3d = ["25", "25", "4", "160", "195", "12"]
    assert main(["segment3d", str(SAMPLE_T1), "--box3d", *box3d, "--server", server.url, "--token-file", str(token), "-o", str(remote_out)]) == 0
    assert main(["segment3d", str(SAMPLE_T1), "--box3d", *box3d, "--model", "wave-gms", "-o", str(local_out)]) == 0
    remote_mask, local_mask = read_image(remote_out).array, read_image(local_out).array
    assert remote_mask.any() and np.array_equal(remote_mask, local_mask)

    slice_out = tmp_path / "slice.nii.gz"
    assert main(["segment", str(SAMPLE_T1), "--slice", str(DEMO_SLICE), "--box", *map(str, DEMO_BOX), "--negative", "90", "108",
                 "--server", server.url, "--token-file", str(token), "-o", str(slice_out)]) == 0
    expected = pool.segmenter(None, None).volume_session(sample_volume.array[DEMO_SLICE][None], prefetch=False)
    expected.segment_slice(0, 0, box=DEMO_BOX)
    expected.click((90, 108, 0), positive=False, repropagate=False)
    assert np.array_equal(read_image(slice_out).array[DEMO_SLICE], expected.mask[0])

    token.write_text("wrong-token-0123456789abcdef\n")
    capsys.readouterr()
    assert main(["segment3d", str(SAMPLE_T1), "--box3d", *box3d, "--server", server.url, "--token-file", str(token), "-o", str(remote_out)]) == 2
    err = capsys.readouterr().err
    assert "waveseg: error: missing or wrong token" in err and "Traceback" not in err
