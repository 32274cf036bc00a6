# The committed golden container: this build packs its source to the same
# bytes (no unintended format change), reads it, and unpacks the same files.
. ./lib.sh
G=../golden
"$G/gen-source.sh" "$GENMODEL" "$T/src" 2>/dev/null
"$QSTORE" pack "$T/src" -o "$T/now.qst" --chunk-size 4K >/dev/null
"$QSTORE" pack "$T/src" -o "$T/now-stored.qst" --chunk-size 4K --int8-codes stored >/dev/null
check "packing the golden source gives the committed bytes" cmp "$G/golden.qst" "$T/now.qst"
check "packing it with stored INT8 codes gives the committed bytes" cmp "$G/golden-stored.qst" "$T/now-stored.qst"
check "the default golden derives its codes, the other stores them" \
	bash -c "'$QSTORE' info --json '$G/golden.qst' | grep -q '\"derived_chunks\": [1-9]' &&
		 '$QSTORE' info --json '$G/golden-stored.qst' | grep -q '\"derived_chunks\": 0,'"
# golden-v2.qst: the same source packed by qstore 0.2 (format 2, still read;
# its INT8 config.json predates run_compressed, hence its own SHA-256 list)
for g in golden golden-stored golden-v2; do
	sums=golden.sha256; [ $g = golden-v2 ] && sums=golden-v2.sha256
	check "$g.qst verifies" "$QSTORE" verify -q "$G/$g.qst"
	rm -rf "$T/high" "$T/int8"
	"$QSTORE" unpack "$G/$g.qst" -o "$T/high" >/dev/null && "$QSTORE" unpack "$G/$g.qst" -o "$T/int8" --precision int8 >/dev/null
	check "$g.qst unpacks to the recorded SHA-256s" bash -c "cd '$T' && sha256sum -c --quiet '$(readlink -f $G)/$sums'"
	check "$g.qst unpacks the golden source byte for byte" diff -r "$T/src" "$T/high"
done
out=$("$QSTORE" info "$G/golden-v1.qst" 2>&1); rc=$?
check "a format version 1 container is refused, naming the version and what to do" \
	bash -c "[ $rc -ne 0 ] && grep -q 'format version 1 is not supported.*unpack it with qstore 0.1' <<< '$out'"
finish
