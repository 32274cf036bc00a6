#!/usr/bin/env bash
# setup-venv.sh VENV - the Python packages the tests use, in a venv under
# build/ (idempotent: a stamp file records what was installed).
set -eu
venv=$1
want="torch==2.13.0 transformers==5.23.0 compressed-tensors==0.20.0 safetensors==0.8.0 sentence-transformers==6.2.0 numpy==2.3.5 pytest==8.4.2 xxhash==4.1.0 zstandard==0.25.0"
stamp="$venv/.qstore-stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	echo "deps: python venv $venv up to date"
	exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check $want 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -c "import torch, transformers, compressed_tensors, safetensors, sentence_transformers, pytest, xxhash, zstandard"
echo "$want" > "$stamp"
echo "deps: python venv $venv ready ($want)"
