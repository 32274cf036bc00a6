# Pack, verify, unpack both views of generated models: bf16 single file,
# sharded with index, f16 and f32, and every awkward value (--special).
. ./lib.sh
roundtrip() {
	local name=$1; shift
	"$GENMODEL" "$T/$name" "$@" 2>/dev/null
	check "$name: pack" "$QSTORE" pack "$T/$name" -o "$T/$name.qst" --threads 2
	check "$name: verify" "$QSTORE" verify -q "$T/$name.qst"
	check "$name: unpack high is byte-identical" bash -c "'$QSTORE' unpack '$T/$name.qst' -o '$T/$name.high' && diff -r '$T/$name' '$T/$name.high'"
	check "$name: unpack int8" "$QSTORE" unpack "$T/$name.qst" -o "$T/$name.int8" --precision int8
	check "$name: int8 config has quantization_config" grep -q '"quant_method": "compressed-tensors"' "$T/$name.int8/config.json"
	check "$name: int8 view shares the tokenizer" cmp "$T/$name/tokenizer.json" "$T/$name.int8/tokenizer.json"
	check "$name: info" "$QSTORE" info "$T/$name.qst"
	check "$name: info --json is JSON" bash -c "'$QSTORE' info --json '$T/$name.qst' | python3 -m json.tool >/dev/null"
	if [ -n "${QS_PYTHON:-}" ] && [ -x "$QS_PYTHON" ]; then
		check "$name: safetensors reference reader accepts the int8 view" "$QS_PYTHON" check_int8.py "$T/$name" "$T/$name.int8"
	fi
}
roundtrip bf16 --mb 6 --hidden 256
roundtrip sharded --mb 6 --hidden 192 --shards 3
roundtrip f16special --mb 3 --hidden 128 --dtype f16 --special
roundtrip bf16special --mb 3 --hidden 128 --special
roundtrip f32 --mb 3 --hidden 96 --dtype f32
check "single .safetensors file as source" bash -c "'$QSTORE' pack '$T/bf16/model.safetensors' -o '$T/one.qst' && '$QSTORE' unpack '$T/one.qst' -o '$T/one' && cmp '$T/bf16/model.safetensors' '$T/one/model.safetensors'"
check "small chunks (4 KiB): rows split across chunks" bash -c "'$QSTORE' pack '$T/sharded' -o '$T/small.qst' --chunk-size 4K && '$QSTORE' verify -q '$T/small.qst'"
finish
