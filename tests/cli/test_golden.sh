# The committed golden container: this build packs its source to the same
# bytes (no unintended format change), reads it, and unpacks the same files.
. ./lib.sh
G=../golden
"$G/gen-source.sh" "$GENMODEL" "$T/src" 2>/dev/null
"$QSTORE" pack "$T/src" -o "$T/now.qst" --chunk-size 4K >/dev/null
"$QSTORE" pack "$T/src" -o "$T/now-stored.qst" --chunk-size 4K --int8-codes stored >/dev/null
"$G/gen-source.sh" "$GENMODEL" "$T/tsrc" --ternary 2>/dev/null
"$QSTORE" pack "$T/tsrc" -o "$T/now-ternary.qst" --chunk-size 4K >/dev/null
check "packing the golden source gives the committed bytes" cmp "$G/golden.qst" "$T/now.qst"
check "packing it with stored INT8 codes gives the committed bytes" cmp "$G/golden-stored.qst" "$T/now-stored.qst"
check "packing its ternary variant gives the committed bytes" cmp "$G/golden-ternary.qst" "$T/now-ternary.qst"
check "the default golden derives its codes, the other stores them" \
	bash -c "'$QSTORE' info --json '$G/golden.qst' | grep -q '\"derived_chunks\": [1-9]' &&
		 '$QSTORE' info --json '$G/golden-stored.qst' | grep -q '\"derived_chunks\": 0,'"
check "the ternary golden stores its codes as tuples, the other stored one does not" \
	bash -c "'$QSTORE' info --json '$G/golden-ternary.qst' | grep -q '\"tuple_chunks\": [1-9]' &&
		 '$QSTORE' info --json '$G/golden-stored.qst' | grep -q '\"tuple_chunks\": 0,' &&
		 '$QSTORE' info '$G/golden-ternary.qst' | grep -q 'stored ([1-9][0-9]* of them as tuples)'"
# golden-v3.qst: golden.qst as qstore 0.3 packed it (format 3, still read);
# golden-v2.qst: as qstore 0.2 packed it (format 2; its INT8 config.json
# predates run_compressed, hence its own SHA-256 list)
for g in golden golden-stored golden-ternary golden-v3 golden-v2; do
	sums=golden.sha256 src=src
	case $g in golden-v2) sums=golden-v2.sha256 ;; golden-ternary) sums=golden-ternary.sha256 src=tsrc ;; esac
	check "$g.qst verifies" "$QSTORE" verify -q "$G/$g.qst"
	rm -rf "$T/high" "$T/int8"
	"$QSTORE" unpack "$G/$g.qst" -o "$T/high" >/dev/null && "$QSTORE" unpack "$G/$g.qst" -o "$T/int8" --precision int8 >/dev/null
	check "$g.qst unpacks to the recorded SHA-256s" bash -c "cd '$T' && sha256sum -c --quiet '$(readlink -f $G)/$sums'"
	check "$g.qst unpacks the golden source byte for byte" diff -r "$T/$src" "$T/high"
done
check "the golden containers are of the versions they stand for" bash -c "
	for v in golden:4 golden-stored:4 golden-ternary:4 golden-v3:3 golden-v2:2; do
		[ \"\$(od -An -tu4 -j8 -N4 '$G/'\${v%:*}.qst | tr -d ' ')\" = \${v#*:} ] || exit 1
	done"
out=$("$QSTORE" info "$G/golden-v1.qst" 2>&1); rc=$?
check "a format version 1 container is refused, naming the version and what to do" \
	bash -c "[ $rc -ne 0 ] && grep -q 'format version 1 is not supported.*unpack it with qstore 0.1' <<< '$out'"
finish
