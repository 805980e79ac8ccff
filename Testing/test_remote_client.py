"""The remote client is torch-free (a Slicer without PyTorch uses it), and its wire format
round-trips exactly and refuses what does not match its header."""

import subprocess
import sys

import numpy as np
import pytest

from waveseg.remote.wire import WireFormatError, decode_mask, decode_volume, encode_mask, encode_volume, mask_from_json, mask_to_json


def test_the_remote_client_imports_neither_torch_nor_the_server_stack():
    code = ("import sys, waveseg.remote, waveseg.remote.session, waveseg.remote.transport;"
            "bad = [m for m in ('torch', 'fastapi', 'uvicorn', 'starlette', 'httpx', 'requests', 'pydantic', 'slicer') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "float32", "float64"])
def test_volumes_round_trip_exactly_in_every_dtype(dtype):
    rng = np.random.default_rng(0)
    volume = (rng.normal(100, 50, (3, 17, 9))).astype(dtype)
    header, payload = encode_volume(volume)
    back = decode_volume(header, payload, max_bytes=volume.nbytes)
    assert back.dtype == volume.dtype and np.array_equal(back, volume)
    with pytest.raises(WireFormatError, match="at most"):
        decode_volume(header, payload, max_bytes=volume.nbytes - 1)


def test_big_endian_input_arrives_as_the_same_numbers():
    volume = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    header, payload = encode_volume(volume)
    assert np.array_equal(decode_volume(header, payload, 10**6), volume)


def test_masks_round_trip_with_odd_widths_and_refuse_a_wrong_header():
    mask = np.random.default_rng(1).random((4, 7, 13)) > 0.5
    assert np.array_equal(mask_from_json(mask_to_json(mask), 3, mask.size), mask)
    header, payload = encode_mask(mask)
    with pytest.raises(WireFormatError, match="inflates|more"):
        decode_mask({**header, "shape": [4, 7, 30]}, payload, 3, 10**6)
    with pytest.raises(WireFormatError, match="exceeds"):
        decode_mask(header, payload, 3, mask.size - 1)
    with pytest.raises(WireFormatError, match="shape"):
        decode_mask({**header, "shape": [4, 7]}, payload, 3, 10**6)
    with pytest.raises(WireFormatError, match="base64"):
        mask_from_json({**header, "data": "***"}, 3, 10**6)
