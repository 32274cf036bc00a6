# Every kernel set the CPU runs gives the same bytes through the whole CLI
# (the unit tests compare the kernels part by part): the packer's quantiser
# writes the same container, and the decoders read every view the same, with
# INT8 codes stored (also as tuples) and derived. QSTORE_SIMD forces a set; an unknown or
# unavailable name falls back to the best one.
. ./lib.sh
"$GENMODEL" "$T/bf16" --mb 4 --hidden 256 --special 2>/dev/null
"$GENMODEL" "$T/f16" --mb 3 --hidden 192 --dtype f16 --special --seed 3 2>/dev/null
"$GENMODEL" "$T/f32" --mb 3 --hidden 96 --dtype f32 --seed 4 2>/dev/null
# ternary rows: codes as tuples (QTUP, chunks of 512K codes reach the vector
# kernel's 32 states) and the residual in sparse groups
"$GENMODEL" "$T/ternary" --mb 6 --hidden 512 --ternary --seed 5 2>/dev/null
for m in bf16 f16 f32 bf16-stored ternary; do
	src=$T/${m%-stored}
	codes=auto; [ "$m" = bf16-stored ] && codes=stored
	QSTORE_SIMD=scalar "$QSTORE" pack "$src" -o "$T/$m.qst" --int8-codes $codes >/dev/null || { fail "$m: pack"; continue; }
	check "$m: the packer writes the same container with every kernel set" bash -c \
		"'$QSTORE' pack '$src' -o '$T/$m.best.qst' --int8-codes $codes >/dev/null && cmp '$T/$m.qst' '$T/$m.best.qst'"
	for set in scalar avx512 no-such-set; do
		check "$m, QSTORE_SIMD=$set: verify" env QSTORE_SIMD=$set "$QSTORE" verify -q "$T/$m.qst"
		check "$m, QSTORE_SIMD=$set: high view byte-identical" bash -c \
			"QSTORE_SIMD=$set '$QSTORE' unpack '$T/$m.qst' -o '$T/$m.$set' >/dev/null && diff -r '$src' '$T/$m.$set'"
		check "$m, QSTORE_SIMD=$set: int8 view as the scalar set's" bash -c \
			"QSTORE_SIMD=$set '$QSTORE' unpack '$T/$m.qst' -o '$T/$m.$set.int8' --precision int8 >/dev/null &&
			 { [ $set = scalar ] || diff -r '$T/$m.scalar.int8' '$T/$m.$set.int8'; }"
		# the lower views' packing has its own kernels (INT4) and plain code (int3)
		for low in int4 int3; do
			check "$m, QSTORE_SIMD=$set: $low view as the scalar set's" bash -c \
				"QSTORE_SIMD=$set '$QSTORE' unpack '$T/$m.qst' -o '$T/$m.$set.$low' --precision $low >/dev/null &&
				 { [ $set = scalar ] || diff -r '$T/$m.scalar.$low' '$T/$m.$set.$low'; }"
		done
	done
done
check "QSTORE_SIMD=scalar: --version names the scalar decoder" bash -c "QSTORE_SIMD=scalar '$QSTORE' --version | grep -q 'scalar decoder'"
check "--version names a decoder set" bash -c "'$QSTORE' --version | grep -Eq '(scalar|avx512) decoder'"
finish
