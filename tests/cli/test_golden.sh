# The committed golden container: this build packs its source to the same
# bytes (no unintended format change), reads it, and unpacks the same files.
. ./lib.sh
G=../golden
"$G/gen-source.sh" "$GENMODEL" "$T/src" 2>/dev/null
"$QSTORE" pack "$T/src" -o "$T/now.qst" --chunk-size 4K >/dev/null
check "packing the golden source gives the committed bytes" cmp "$G/golden.qst" "$T/now.qst"
check "the golden container verifies" "$QSTORE" verify -q "$G/golden.qst"
"$QSTORE" unpack "$G/golden.qst" -o "$T/high" >/dev/null && "$QSTORE" unpack "$G/golden.qst" -o "$T/int8" --precision int8 >/dev/null
check "the golden container unpacks to the recorded SHA-256s" bash -c "cd '$T' && sha256sum -c --quiet '$(readlink -f $G/golden.sha256)'"
check "the golden source unpacks byte for byte" diff -r "$T/src" "$T/high"
out=$("$QSTORE" info "$G/golden-v1.qst" 2>&1); rc=$?
check "a format version 1 container is refused, naming the version and what to do" \
	bash -c "[ $rc -ne 0 ] && grep -q 'format version 1 is not supported.*unpack it with qstore 0.1' <<< '$out'"
finish
