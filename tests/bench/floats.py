#!/usr/bin/env python3
"""floats.py SRC_DIR OUT_DIR - the tensors of SRC_DIR that qstore keeps in
float (embeddings, lm_head: FSYM parts) as a model of their own, so that
make bench can time the float codec against ZipNN's on the same bytes."""
import json
import os
import shutil
import sys

from safetensors import safe_open
from safetensors.torch import save_file


def main(src, out):
    os.makedirs(out, exist_ok=True)
    keep = {}
    for name in sorted(os.listdir(src)):
        if not name.endswith(".safetensors"):
            continue
        with safe_open(os.path.join(src, name), framework="pt") as f:
            for k in f.keys():
                if "embed" in k or k == "lm_head.weight":
                    keep[k] = f.get_tensor(k).contiguous()
    if not keep:
        sys.exit(f"floats.py: {src}: no embedding or lm_head tensor")
    save_file(keep, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    cfg = os.path.join(src, "config.json")
    if os.path.exists(cfg):
        shutil.copy(cfg, os.path.join(out, "config.json"))
    print(json.dumps({k: list(v.shape) for k, v in keep.items()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
