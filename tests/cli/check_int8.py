"""The INT8 view, read by the reference safetensors reader (Rust, via the
PyPI package): every file opens, I8 weights load, and each dequantises to
within half a scale step of the original (plus one f32 division's rounding).
usage: check_int8.py HIGH_DIR INT8_DIR"""
import json
import os
import sys

import numpy as np
from safetensors import safe_open

high, low = sys.argv[1], sys.argv[2]


def floats(raw, dtype):
    """numpy has no bfloat16: widen bf16 bits to f32 by hand."""
    if dtype == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return raw.view({"F16": np.float16, "F32": np.float32}[dtype]).astype(np.float32)


def read_raw(path):
    """name -> (dtype, shape, raw bytes) straight from the file."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
        data = f.read()
    hdr.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], np.uint8))
            for k, v in hdr.items()}


checked = 0
for name in sorted(os.listdir(low)):
    if not name.endswith(".safetensors"):
        continue
    orig = read_raw(os.path.join(high, name))
    mine = read_raw(os.path.join(low, name))
    with safe_open(os.path.join(low, name), framework="numpy") as f:   # the reference parser
        keys = set(f.keys())
        assert keys == set(mine), (name, keys ^ set(mine))
        for k in keys:
            if mine[k][0] == "I8" and orig[k][0] != "I8":
                q = f.get_tensor(k)
                dt, shape, raw = orig[k]
                w = floats(raw, dt).reshape(shape)
                sdt, sshape, sraw = mine[k + "_scale"]
                assert sshape == [shape[0], 1], (k, sshape)
                s = floats(sraw, sdt).reshape(sshape)
                err = np.abs(w - q.astype(np.float32) * s)
                bound = (0.5 + 128 / 2**23) * s + 1e-30
                assert np.all(err <= bound), (k, float((err / s).max()))
                checked += 1
            elif k.endswith("_scale") and k[:-6] in mine:
                continue
            else:
                assert mine[k][2].tobytes() == orig[k][2].tobytes(), k
print(f"{checked} INT8 weights checked")
assert checked > 0
