# Damaged containers given to info, verify and unpack: refused with a message
# naming the container (and file, tensor, chunk for data damage), no crash,
# no half-written output.
. ./lib.sh
"$GENMODEL" "$T/m" --mb 2 --hidden 128 2>/dev/null
"$QSTORE" pack "$T/m" -o "$T/good.qst" --chunk-size 64K >/dev/null
size=$(stat -c %s "$T/good.qst")
head -c $((size - 100)) "$T/good.qst" > "$T/trunc.qst"
expect_error "truncated: info" "trunc.qst: truncated or damaged" "$QSTORE" info "$T/trunc.qst"
expect_error "truncated: unpack" "trunc.qst" "$QSTORE" unpack "$T/trunc.qst" -o "$T/out1"
check "truncated: unpack wrote nothing" bash -c "! ls -A '$T' | grep -q out1"
flip() { # flip OFFSET OUT
	cp "$T/good.qst" "$2"
	printf '\xff' | dd of="$2" bs=1 seek="$1" conv=notrunc status=none
}
flip 3 "$T/hdr.qst"
expect_error "damaged header magic" "not a qstore container" "$QSTORE" info "$T/hdr.qst"
flip 20 "$T/hdr2.qst"
expect_error "damaged header" "damaged header" "$QSTORE" verify "$T/hdr2.qst"
flip $((size - 60)) "$T/trl.qst"
expect_error "damaged trailer" "trailer" "$QSTORE" info "$T/trl.qst"
flip $((size - 300)) "$T/idx.qst"
expect_error "damaged index" "damaged index" "$QSTORE" info "$T/idx.qst"
flip 5000 "$T/data.qst"
expect_error "damaged chunk: verify names file, tensor and chunk" "file '.*': tensor '.*': chunk [0-9]+" "$QSTORE" verify -q "$T/data.qst"
expect_error "damaged chunk: unpack refuses" "chunk" "$QSTORE" unpack "$T/data.qst" -o "$T/out2"
check "damaged chunk: unpack wrote nothing" bash -c "! ls -A '$T' | grep -q out2"
finish
