#!/usr/bin/env python3
"""widen.py SRC DST f32|f16 - copy a model directory, converting its BF16
tensors exactly to F32 (or to F16, exact for BF16 values in the F16 normal
range), the way `model.to(dtype)` does: the widened mantissas end in zero
bits, which is the case the shift byte of FSYM and QRES parts exists for."""
import os
import shutil
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def main(src, dst, dtype):
    to = {"f32": torch.float32, "f16": torch.float16}[dtype]
    shutil.copytree(src, dst)
    for root, _, files in os.walk(dst):
        for name in files:
            if not name.endswith(".safetensors"):
                continue
            path = os.path.join(root, name)
            with safe_open(path, "pt") as f:
                meta = f.metadata()
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            tensors = {k: t.to(to) if t.dtype == torch.bfloat16 else t for k, t in tensors.items()}
            save_file(tensors, path, metadata=meta)


if __name__ == "__main__":
    main(*sys.argv[1:])
