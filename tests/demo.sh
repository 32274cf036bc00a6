#!/usr/bin/env bash
# make demo: the main job on an embedded default.  Generate a small sharded
# BF16 model, pack it into one container, show what is inside, verify it, and
# rebuild both precisions from it: the high precision byte for byte, the INT8
# model as a compressed-tensors directory.
set -eu
B=$(readlink -f "${1:-build}")
D="$B/demo"
rm -rf "$D"
mkdir -p "$D"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. a generated Llama-style BF16 model (2 shards + index, config, tokenizer)"
"$B/genmodel" "$D/model" --mb 48 --hidden 512 --shards 2 --words
ls -l "$D/model"

say "2. pack it: INT8 codes + the residual that rebuilds BF16 exactly, one file"
"$B/qstore" pack "$D/model" -o "$D/model.qst"

say "3. what the container holds"
"$B/qstore" info "$D/model.qst" | sed -n '1,22p'
echo "  ..."

say "4. verify: decode every chunk, check every checksum and SHA-256"
"$B/qstore" verify -q "$D/model.qst"

say "5. unpack the high precision: byte-identical to the source"
"$B/qstore" unpack "$D/model.qst" -o "$D/bf16"
diff -r "$D/model" "$D/bf16" && echo "diff -r: identical"
(cd "$D/model" && sha256sum model-0000*.safetensors) | sed 's/^/  source  /'
(cd "$D/bf16" && sha256sum model-0000*.safetensors) | sed 's/^/  rebuilt /'

say "6. unpack the INT8 model (compressed-tensors naive-quantized)"
"$B/qstore" unpack "$D/model.qst" -o "$D/int8" --precision int8
python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(json.dumps(c['quantization_config'], indent=1)[:600])" "$D/int8/config.json"
python3 - "$D/int8/model-00001-of-00002.safetensors" <<'PY'
import json, struct, sys
f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n))
for k in sorted(k for k in h if '.0.self_attn.q_proj.' in k or '.0.input_layernorm' in k):
    print(f"  {k}: {h[k]['dtype']} {h[k]['shape']}")
PY

say "7. mount it: both precisions served on demand by qstorefs"
mkdir -p "$D/back" "$D/mnt"
cp "$D/model.qst" "$D/back/llama.qst"
"$B/qstorefs" "$D/back" "$D/mnt" -o cache_size=128M
trap 'fusermount3 -u "$D/mnt" 2>/dev/null || true' EXIT
for i in $(seq 50); do mountpoint -q "$D/mnt" && break; sleep 0.1; done
(cd "$D/mnt" && find llama -maxdepth 2 | sort | sed 's/^/  /')
for f in $(cd "$D/model" && ls model-0000*.safetensors); do
	a=$(sha256sum < "$D/model/$f" | cut -c1-16); b=$(sha256sum < "$D/mnt/llama/bf16/$f" | cut -c1-16)
	echo "  bf16/$f  source $a  mount $b  $([ "$a" = "$b" ] && echo identical || echo DIFFERENT)"
	[ "$a" = "$b" ]
done
diff -r "$D/int8" "$D/mnt/llama/int8" && echo "  int8/ on the mount = qstore unpack --precision int8"
python3 - "$D/mnt/llama/model-bf16.safetensors" "$D/mnt/llama/model-int8.safetensors" <<'PY'
import json, struct, sys
for p in sys.argv[1:]:
    f = open(p, 'rb'); n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n)); h.pop('__metadata__', None)
    print(f"  {p.split('/')[-1]}: one valid safetensors file, {len(h)} tensors (merged from the shards)")
PY
if [ -x "$B/venv/bin/python" ]; then   # make check's venv: transformers on both views
	for v in bf16 int8; do
		"$B/venv/bin/python" - "$D/mnt/llama/$v" <<'PY' 2>/dev/null || echo "  (transformers pipeline on $v/ failed)"
import sys, warnings
warnings.filterwarnings("ignore")
import transformers
transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
p = transformers.pipeline("text-generation", model=sys.argv[1], device="cpu")
print(f"  pipeline on {sys.argv[1].split('/')[-1]}/: " + repr(p("The model host", max_new_tokens=5, do_sample=False)[0]["generated_text"]))
PY
	done
else
	echo "  (make check's venv has transformers: then this step also runs a text-generation pipeline on both views)"
fi
echo "  stats: $(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print('decoded', round(s['decoded']['bytes']/1e6), 'MB, cache hits', s['cache']['hits'], 'misses', s['cache']['misses'])" "$D/mnt/.qstorefs/stats")"
fusermount3 -u "$D/mnt"
trap - EXIT

say "8. the point: both precisions in one file"
hb=$(du -cb "$D/model"/*.safetensors | tail -1 | cut -f1)
ib=$(du -cb "$D/int8"/*.safetensors | tail -1 | cut -f1)
cb=$(stat -c %s "$D/model.qst")
awk -v h="$hb" -v i="$ib" -v c="$cb" 'BEGIN {
	printf "  BF16 weights      %10.1f MB\n  INT8 weights      %10.1f MB\n  both, separately  %10.1f MB\n", h/1e6, i/1e6, (h+i)/1e6
	printf "  one container     %10.1f MB  = %.1f%% of both, %.1f%% of BF16 alone\n", c/1e6, 100*c/(h+i), 100*c/h }'
echo
echo "demo files are in $D"
