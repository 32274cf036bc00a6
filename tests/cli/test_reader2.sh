# The second reader (tests/reader2/qsread.py, written from codec/FORMAT.md
# alone) decodes what the C encoder writes, byte for byte: the golden
# container, generated models in each float format, and widened ones whose
# mantissas end in zero bits (the FSYM/QRES shift byte), each with its INT8
# codes stored (QCODE or QTUP + QRES) and derived from the floats (QDRV); it
# builds the lower views (int2..int7) as qstore does; and it refuses damage.
. ./lib.sh
[ -n "${QS_QUICK:-}" ] && { echo "  (skipped in the quick pass: pure Python)"; exit 0; }
if [ -z "${QS_PYTHON:-}" ] || [ ! -x "$QS_PYTHON" ]; then
	fail "the second reader needs the test venv (run make deps)"; finish
fi
R=../reader2
G=../golden
for g in golden golden-stored golden-ternary golden-v3 golden-v2; do
	sums=golden.sha256
	case $g in golden-v2) sums=golden-v2.sha256 ;; golden-ternary) sums=golden-ternary.sha256 ;; esac
	check "second reader: $g.qst" "$QS_PYTHON" "$R/qsread.py" "$G/$g.qst" "$T/$g"
	check "second reader: $g.qst files have the recorded SHA-256s" bash -c "cd '$T/$g' && sha256sum -c --quiet '$(readlink -f $G)/$sums'"
done

model() {   # model NAME SRC_DIR: pack both ways, read back with both readers, compare
	local base=$1 src=$2 codes name
	for codes in stored derived; do
		name=$base-$codes
		"$QSTORE" pack "$src" -o "$T/$name.qst" --chunk-size 8K --int8-codes $codes >/dev/null &&
			"$QSTORE" unpack "$T/$name.qst" -o "$T/$name.int8" --precision int8 >/dev/null ||
			{ fail "$name: pack/unpack"; continue; }
		check "second reader: $name decodes" "$QS_PYTHON" "$R/qsread.py" "$T/$name.qst" "$T/$name.out"
		check "second reader: $name high view = source" diff -r "$src" "$T/$name.out/high"
		check "second reader: $name int8 view = qstore's" diff -r "$T/$name.int8" "$T/$name.out/int8"
	done
}
"$GENMODEL" "$T/bf16" --mb 0.1 --hidden 48 --vocab 64 --shards 2 --special --seed 7 >/dev/null 2>&1
"$GENMODEL" "$T/f16" --mb 0.08 --hidden 48 --vocab 64 --dtype f16 --special --seed 8 >/dev/null 2>&1
"$GENMODEL" "$T/f32" --mb 0.08 --hidden 48 --vocab 64 --dtype f32 --special --seed 9 >/dev/null 2>&1
model bf16 "$T/bf16"
model f16 "$T/f16"
model f32 "$T/f32"   # 23-bit mantissas: symbol then count, not the joint step
"$GENMODEL" "$T/tern" --mb 0.1 --hidden 48 --vocab 64 --ternary --seed 10 >/dev/null 2>&1
model ternary "$T/tern"
check "second reader: the ternary model's stored codes are tuples (QTUP)" \
	bash -c "'$QS_PYTHON' '$R/qsread.py' '$T/ternary-stored.qst' '$T/tern-again' | grep -q 'QTUP [1-9]'"
# the lower views (FORMAT.md section 7), built by the second reader from the
# INT8 view it decoded: safetensors files byte for byte, JSON files as values
lower() {   # lower NAME.qst: qsread --lower against qstore unpack --precision
	local q=$1 base n f same
	base=$(basename "$q" .qst)
	"$QS_PYTHON" "$R/qsread.py" "$q" "$T/$base.low" --lower int2,int3,int4,int5,int6,int7 >/dev/null ||
		{ fail "second reader: $base lower views"; return; }
	for n in 2 3 4 5 6 7; do
		"$QSTORE" unpack "$q" --precision int$n -o "$T/$base.q$n" >/dev/null || { fail "$base: unpack int$n"; continue; }
		same=1
		for f in $(cd "$T/$base.q$n" && find . -type f | sort); do
			case $f in
			*.json) "$QS_PYTHON" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
				"$T/$base.q$n/$f" "$T/$base.low/int$n/$f" || { same=0; echo "        int$n $f differs"; } ;;
			*) cmp -s "$T/$base.q$n/$f" "$T/$base.low/int$n/$f" || { same=0; echo "        int$n $f differs"; } ;;
			esac
		done
		check "second reader: $base int$n view = qstore's" test $same = 1 -a \
			"$(cd "$T/$base.q$n" && find . -type f | sort)" = "$(cd "$T/$base.low/int$n" && find . -type f | sort)"
	done
}
# hidden 128: int4 packs the attention weights, keeps down_proj (352 columns) in float
"$GENMODEL" "$T/low" --mb 0.3 --hidden 128 --shards 2 --seed 11 >/dev/null 2>&1
for codes in stored derived; do
	"$QSTORE" pack "$T/low" -o "$T/low-$codes.qst" --chunk-size 8K --int8-codes $codes >/dev/null || fail "low: pack"
	lower "$T/low-$codes.qst"
done
lower "$T/f16-derived.qst"
check "second reader: int4 keeps a weight in float and lists it in ignore" \
	grep -q '"model.layers.0.mlp.down_proj"' "$T/low-stored.low/int4/config.json"

for dt in f32 f16; do
	"$QS_PYTHON" "$R/widen.py" "$T/bf16" "$T/wide-$dt" $dt || fail "widen to $dt"
	model "bf16-as-$dt" "$T/wide-$dt"
done

# damage: one flipped byte inside a chunk part, and a truncated copy
cp "$G/golden.qst" "$T/flip.qst"
printf '\x5a' | dd of="$T/flip.qst" bs=1 seek=2000 conv=notrunc status=none
expect_error "second reader: flipped chunk byte" "hash mismatch|damage|rANS|codec|size" \
	"$QS_PYTHON" "$R/qsread.py" "$T/flip.qst" "$T/flip"
head -c 30000 "$G/golden.qst" > "$T/short.qst"
expect_error "second reader: truncated container" "trailer|size" "$QS_PYTHON" "$R/qsread.py" "$T/short.qst" "$T/short"
finish
