"""The ``waveseg`` command line, run as a user runs it (a subprocess)."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from waveseg.metrics import dice
from waveseg.io import read_image
from waveseg.sample_data import DEMO_SLICE, SAMPLE_BRAIN_MASK, SAMPLE_T1


def waveseg(*args, cwd=None):
    exe = shutil.which("waveseg")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "waveseg.cli", *args]
    return subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", cwd=cwd, timeout=600)


@pytest.mark.parametrize("sub", [[], ["segment"], ["info"], ["demo"], ["batch"]])
def test_help_for_every_command(sub):
    result = waveseg(*sub, "--help")
    assert result.returncode == 0 and "usage: waveseg" in result.stdout


def test_demo_box_click_propagation_each_scored_with_an_overlay(tmp_path):
    import re

    result = waveseg("demo", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "box, corrective click and propagation" in result.stderr  # progress on stderr
    scores = [float(d) for d in re.findall(r"Dice (\d\.\d+) against the reference", result.stdout)]
    assert [line.split(",")[1].split(":")[0].strip() for line in result.stdout.splitlines()] == \
        ["box", "corrective click", "propagation"]
    truth = read_image(SAMPLE_BRAIN_MASK).array > 0
    mask = read_image(tmp_path / "out" / "demo_mask.nii.gz").array > 0
    # the printed numbers are the written result's: step 3's is the 3D Dice of the file, step 2's its middle slice
    assert scores[2] == pytest.approx(dice(mask, truth), abs=5e-4)
    assert scores[1] == pytest.approx(dice(mask[DEMO_SLICE], truth[DEMO_SLICE]), abs=5e-4)
    assert min(scores) > 0.9 and mask.any(axis=(1, 2)).all()  # propagated to every slice
    assert read_image(tmp_path / "out" / "demo_mask.seg.nrrd").array.shape == mask.shape
    for name in ("demo_1_box.png", "demo_2_click.png"):
        overlay = Image.open(tmp_path / "out" / name)
        assert overlay.size == (181, 217) and overlay.mode == "RGB"
    assert Image.open(tmp_path / "out" / "demo_3_propagation.png").size == (4 * 181, 4 * 217)  # the 16 slices
    box, click = (np.asarray(Image.open(tmp_path / "out" / n)) for n in ("demo_1_box.png", "demo_2_click.png"))
    assert (box != click).any()  # the click (and its change) is drawn


def test_segment_with_box_and_clicks_on_a_volume_slice(tmp_path):
    out = tmp_path / "m.seg.nrrd"
    result = waveseg("segment", str(SAMPLE_T1), "--slice", "3", "--box", "20", "20", "162", "198",
                     "--point", "90", "150", "--negative", "5", "5", "--model", "wave-gms",
                     "-o", str(out), "--overlay", str(tmp_path / "o.png"))
    assert result.returncode == 0, result.stderr
    written = read_image(out)
    assert written.array.shape == read_image(SAMPLE_T1).array.shape
    assert written.spacing == read_image(SAMPLE_T1).spacing
    assert (tmp_path / "o.png").exists()


def test_segment_a_png_to_a_png(tmp_path, sample_slice):
    Image.fromarray(sample_slice).save(tmp_path / "slice.png")
    result = waveseg("segment", str(tmp_path / "slice.png"), "--box", "20", "20", "162", "198",
                     "--model", "wave-gms", "-o", str(tmp_path / "mask.png"))
    assert result.returncode == 0, result.stderr
    assert np.asarray(Image.open(tmp_path / "mask.png")).shape == sample_slice.shape


def test_info_prints_geometry():
    result = waveseg("info", str(SAMPLE_T1))
    assert result.returncode == 0 and "(16, 217, 181)" in result.stdout and "spacing" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["segment", str(SAMPLE_T1), "--box", "1", "2", "30", "40", "-o", "x.nii.gz"], "choose one with --slice"),
        (["segment", str(SAMPLE_T1), "--slice", "16", "--box", "1", "2", "30", "40", "-o", "x.nii.gz"], "past the end"),
        (["segment", str(SAMPLE_T1), "--slice", "2", "-o", "x.nii.gz"], "give a prompt"),
        (["segment", str(SAMPLE_T1), "--slice", "2", "--point", "900", "2", "-o", "x.nii.gz"], "outside"),
        (["segment", str(SAMPLE_T1), "--slice", "2", "--box", "5", "5", "5", "9", "-o", "x.nii.gz"], "zero width"),
        (["segment", "missing.nii.gz", "--box", "1", "2", "3", "4", "-o", "x.nii.gz"], "does not exist"),
        (["segment", str(SAMPLE_T1), "--slice", "2", "--box", "1", "2", "30", "40", "--model", "evil.pth", "-o", "x.nii.gz"],
         "not loaded"),
        (["info", "missing.nrrd"], "does not exist"),
    ],
)
def test_bad_input_gives_one_clear_line_and_no_file(tmp_path, args, message):
    result = waveseg(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.nii.gz").exists()


def test_segment3d_writes_a_segmentation_on_the_volume_grid(tmp_path):
    out = tmp_path / "brain.seg.nrrd"
    result = waveseg("segment3d", str(SAMPLE_T1), "--box3d", "20", "20", "6", "162", "198", "10",
                     "--model", "wave-gms", "--name", "brain", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "propagat" in result.stderr
    written = read_image(out)
    assert written.array.shape == (16, 217, 181) and written.origin == read_image(SAMPLE_T1).origin


@pytest.mark.parametrize(
    "args, message",
    [
        (["segment3d", str(SAMPLE_T1), "-o", "x.nii.gz"], "give a prompt"),
        (["segment3d", str(SAMPLE_T1), "--box3d", "1", "2", "3", "400", "500", "600", "--point", "1", "1", "99", "-o", "x.nii.gz"],
         "past the end"),
    ],
)
def test_segment3d_bad_input(tmp_path, args, message):
    result = waveseg(*args, "--model", "wave-gms", cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.nii.gz").exists()


def test_batch_json_runs_every_item_and_reports_failures_without_stopping(tmp_path):
    import json

    items = [
        {"image": str(SAMPLE_T1), "slice": 3, "box": [20, 20, 162, 198], "point": [[90, 150]], "negative": [[5, 5]],
         "output": "out/slice.seg.nrrd", "overlay": "out/slice.png"},
        {"image": str(SAMPLE_T1), "slice": 3, "point": [[900, 2]], "output": "out/outside.nii.gz"},
        {"image": "missing.nii.gz", "slice": 3, "box": [1, 2, 30, 40], "output": "out/missing.nii.gz"},
        {"image": str(SAMPLE_T1), "slice": 3, "boxx": [1, 2, 30, 40], "output": "out/typo.nii.gz"},
        {"image": str(SAMPLE_T1), "box3d": [20, 20, 6, 162, 198, 10], "name": "brain", "output": "out/brain.seg.nrrd"},
    ]
    (tmp_path / "batch.json").write_text(json.dumps(items))
    result = waveseg("batch", str(tmp_path / "batch.json"), "--model", "wave-gms")
    assert result.returncode == 1, result.stderr  # some items failed
    assert "outside" in result.stdout and "does not exist" in result.stdout and "boxx" in result.stdout
    assert "2 of 5 items written; 3 failed" in result.stderr and "Traceback" not in result.stderr
    assert "5/5" in result.stderr  # the progress bar reached the end
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["brain.seg.nrrd", "slice.png", "slice.seg.nrrd"]
    brain = read_image(tmp_path / "out" / "brain.seg.nrrd").array > 0
    assert brain.shape == (16, 217, 181) and brain[8].any()

    # the same as one `waveseg segment` call with the same prompt
    single = waveseg("segment", str(SAMPLE_T1), "--slice", "3", "--box", "20", "20", "162", "198", "--point", "90", "150",
                     "--negative", "5", "5", "--model", "wave-gms", "-o", str(tmp_path / "single.seg.nrrd"))
    assert single.returncode == 0, single.stderr
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "slice.seg.nrrd").array,
                                  read_image(tmp_path / "single.seg.nrrd").array)


def test_batch_csv_and_bad_batch_files(tmp_path, sample_slice):
    Image.fromarray(sample_slice).save(tmp_path / "slice.png")
    (tmp_path / "batch.csv").write_text(
        "image,output,box,point,negative\n"
        "slice.png,a.png,20 20 162 198,90 150; 100 120,5 5\n"
        "slice.png,b.png,,90 150,\n")
    result = waveseg("batch", str(tmp_path / "batch.csv"), "--model", "wave-gms")
    assert result.returncode == 0, result.stderr
    assert "2 of 2 items written" in result.stderr
    for name in ("a.png", "b.png"):
        assert np.asarray(Image.open(tmp_path / name)).shape == sample_slice.shape

    (tmp_path / "bad.json").write_text("{not json")
    result = waveseg("batch", str(tmp_path / "bad.json"), "--model", "wave-gms")
    assert result.returncode == 2 and "not valid JSON" in result.stderr and "Traceback" not in result.stderr
