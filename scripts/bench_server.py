"""Benchmark the site server on loopback: 1, 8 and 32 concurrent simulated users.

    .venv/bin/python scripts/bench_server.py [--users 1 8 32] [--rounds 4 2 1] [--clicks 3] [--json reports/bench_server.json]

Each user is a thread with its own connection and a real session on a ``waveseg serve``
subprocess (model "default", CPU, one model thread): upload the LiTS CT crop (128^3, int16, real,
liver label from the LiTS challenge), then ``--rounds`` rounds, each on another liver slice: a box,
``--clicks`` RITM corrective clicks (next click at the largest error region's centre,
``waveseg.prompting.simulation``), a propagation over 9 slices (box3d). Users work on different
slices, so each encodes its own. One user's round runs first, unmeasured, on both sides (the first
decode of each kind initialises onnxruntime).
Measured: median and 95th percentile click latency at the client, requests per second, the
server's peak RSS (VmHWM of its process), and the same clicks in this process on a local
``VolumeSession`` (the ratio remote / in-process, same machine, same prompts).
Upload size: a 512 x 512 x 200 CT-like volume, made by resampling the pyradiomics lung CT
(512 x 512 x 61 at 5 mm, real) to 200 slices along z (linear), against its raw size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Testing"))  # the loopback server harness the tests use
sys.path.insert(0, str(ROOT / "scripts"))

from scripts_common import load_array  # noqa: E402
from server_harness import ProcessServer  # noqa: E402

from waveseg.prompting.simulation import next_click  # noqa: E402
from waveseg.remote import RemoteSegmenter  # noqa: E402
from waveseg.remote.wire import encode_volume  # noqa: E402

WINDOW = (-160.0, 240.0)  # abdomen CT
PROPAGATE_HALF_RANGE = 4


def liver_slices(label: np.ndarray, n: int) -> list[int]:
    area = (label == 1).sum(axis=(1, 2))
    candidates = np.flatnonzero(area >= 0.5 * area.max())
    return [int(candidates[int(round(t))]) for t in np.linspace(0, len(candidates) - 1, n)]


def tight_box(mask2d: np.ndarray) -> tuple[float, float, float, float]:
    rows, cols = np.nonzero(mask2d)
    return float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max())


def user_script(session, truth: np.ndarray, k: int, clicks: int, latencies: list[float], counter: list[int]) -> None:
    """One simulated user on slice k: box, RITM clicks (each timed), propagation over a few slices."""
    truth2d = truth[k] == 1
    x0, y0, x1, y1 = tight_box(truth2d)
    session.segment_slice(0, k, box=(x0 - 3, y0 - 3, x1 + 3, y1 + 3))
    counter[0] += 1
    for _ in range(clicks):
        x, y, label = next_click(session.mask[k], truth2d)
        start = time.perf_counter()
        session.click((x, y, k), positive=bool(label), axis=0, repropagate=False)
        latencies.append(time.perf_counter() - start)
        counter[0] += 1
    lo, hi = max(k - PROPAGATE_HALF_RANGE, 0), min(k + PROPAGATE_HALF_RANGE, truth.shape[0] - 1)
    session.box3d((x0, y0, lo), (x1, y1, hi))
    counter[0] += 1


def run_users(url: str, volume: np.ndarray, truth: np.ndarray, users: int, clicks: int, rounds: int = 1) -> dict:
    slices = liver_slices(truth, users * rounds)
    latencies: list[float] = []
    counters = [[0] for _ in range(users)]
    errors: list[str] = []
    ready = threading.Barrier(users + 1)
    sessions = []
    for _ in range(users):  # upload first (the steady state of a department is sessions that exist)
        sessions.append(RemoteSegmenter(url).volume_session(volume, window=WINDOW))

    def work(n: int) -> None:
        ready.wait()
        try:
            for r in range(rounds):
                user_script(sessions[n], truth, slices[n * rounds + r], clicks, latencies, counters[n])
        except Exception as exc:  # reported in the table's notes, never hidden
            errors.append(f"user {n}: {exc}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(users)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    for s in sessions:
        s.close()
    lat_ms = sorted(1000 * v for v in latencies)
    return {"users": users, "rounds": rounds, "clicks": len(lat_ms), "median_ms": statistics.median(lat_ms),
            "p95_ms": lat_ms[min(len(lat_ms) - 1, int(np.ceil(0.95 * len(lat_ms))) - 1)],
            "requests": sum(c[0] for c in counters), "wall_s": wall, "requests_per_s": sum(c[0] for c in counters) / wall,
            "errors": errors}


def in_process_clicks(volume: np.ndarray, truth: np.ndarray, clicks: int, rounds: int) -> tuple[list[float], np.ndarray]:
    """The 1-user script on a local VolumeSession; returns click latencies and the first measured round's mask."""
    from waveseg.predictor import Segmenter

    seg = Segmenter.from_pretrained("default")
    warm = seg.volume_session(volume, window=WINDOW, prefetch=False)
    user_script(warm, truth, liver_slices(truth, 1)[0], clicks, [], [0])  # warm-up, not measured
    latencies: list[float] = []
    mask = None
    for k in liver_slices(truth, rounds):
        session = seg.volume_session(volume, window=WINDOW, prefetch=False)
        user_script(session, truth, k, clicks, latencies, [0])
        mask = session.mask if mask is None else mask
    return latencies, mask


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def upload_sizes() -> dict:
    from scipy.ndimage import zoom

    lung = load_array("pyradiomics_lung2_image.nii.gz")  # (61, 512, 512) int16
    ct = zoom(lung, (200 / lung.shape[0], 1, 1), order=1).astype(np.int16)
    start = time.perf_counter()
    _, payload = encode_volume(ct)
    return {"shape": list(ct.shape), "raw_mb": ct.nbytes / 2**20, "upload_mb": len(payload) / 2**20,
            "ratio": len(payload) / ct.nbytes, "encode_s": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, nargs="+", default=[4, 2, 1], help="rounds per user, one per --users entry")
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--json", default=str(ROOT / "reports" / "bench_server.json"))
    args = parser.parse_args()
    volume = load_array("lits117_ct.nii.gz")
    truth = load_array("lits117_label.nii.gz").astype(np.uint8)
    rounds = dict(zip(args.users, args.rounds + [1] * len(args.users)))
    local_latencies, local_mask = in_process_clicks(volume, truth, args.clicks, rounds.get(1, 1))
    server = ProcessServer("--model", "default", "--device", "cpu", "--session-cache-mb", "64")
    try:
        warm = RemoteSegmenter(server.url).volume_session(volume, window=WINDOW)
        user_script(warm, truth, liver_slices(truth, 1)[0], args.clicks, [], [0])  # warm-up, not measured
        warm.close()
        check = RemoteSegmenter(server.url).volume_session(volume, window=WINDOW)  # the first measured local round's prompts
        user_script(check, truth, liver_slices(truth, rounds.get(1, 1))[0], args.clicks, [], [0])
        remote_mask = check.mask.copy()
        check.close()
        rows = []
        for users in args.users:
            rows.append(run_users(server.url, volume, truth, users, args.clicks, rounds[users]))
            print(json.dumps(rows[-1]), flush=True)
        rss = peak_rss_mb(server.process.pid)
    finally:
        server.stop()
    uploads = upload_sizes()
    local_ms = statistics.median(1000 * v for v in local_latencies)
    result = {"rows": rows, "in_process_click_median_ms": local_ms, "server_peak_rss_mb": rss, "upload": uploads,
              "remote_equals_local_mask": bool(remote_mask is not None and np.array_equal(remote_mask, local_mask)),
              "clicks_per_round": args.clicks, "in_process_clicks": len(local_latencies)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print("\n| users | rounds each | clicks | click median (ms) | click p95 (ms) | remote / in-process (median) | requests/s | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['users']} | {r['rounds']} | {r['clicks']} | {r['median_ms']:.0f} | {r['p95_ms']:.0f} | {r['median_ms'] / local_ms:.2f} | "
              f"{r['requests_per_s']:.1f} | {len(r['errors'])} |")
    print(f"\nin-process click median {local_ms:.0f} ms ({len(local_latencies)} clicks); server peak RSS {rss:.0f} MiB; remote mask == local mask: "
          f"{result['remote_equals_local_mask']}")
    print(f"upload of a {uploads['shape']} int16 CT: {uploads['upload_mb']:.1f} MiB of {uploads['raw_mb']:.1f} MiB raw "
          f"({uploads['ratio']:.2f}), compressed in {uploads['encode_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
