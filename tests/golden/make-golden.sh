#!/usr/bin/env bash
# make-golden.sh BUILD_DIR - regenerate the committed golden containers of
# this format version (golden-v2.qst and golden-v3.qst stay: older versions).
# Run only when the format or the encoder changes on purpose, and say so in
# the commit: test_golden.sh fails on any unintended change.
set -eu
B=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
"$here/gen-source.sh" "$B/genmodel" "$t/src"
"$B/qstore" pack "$t/src" -o "$here/golden.qst" --chunk-size 4K --threads 2 --force
# the same source with every INT8 code stored (QCODE + QRES; the default
# derives them from the floats wherever that is about as small)
"$B/qstore" pack "$t/src" -o "$here/golden-stored.qst" --chunk-size 4K --threads 2 --int8-codes stored --force
# ternary weights: the INT8 codes stored as tuples (QTUP)
"$here/gen-source.sh" "$B/genmodel" "$t/tsrc" --ternary
"$B/qstore" pack "$t/tsrc" -o "$here/golden-ternary.qst" --chunk-size 4K --threads 2 --force
sums() {   # sums X.qst OUT.sha256: the SHA-256s of both views' files
	rm -rf "$t/high" "$t/int8"
	"$B/qstore" unpack "$1" -o "$t/high"
	"$B/qstore" unpack "$1" -o "$t/int8" --precision int8
	(cd "$t" && find high int8 -type f | LC_ALL=C sort | xargs sha256sum) > "$2"
}
sums "$here/golden.qst" "$here/golden.sha256"
sums "$here/golden-ternary.qst" "$here/golden-ternary.sha256"
echo "golden: $(stat -c %s "$here/golden.qst") bytes, stored codes $(stat -c %s "$here/golden-stored.qst") bytes," \
	"ternary $(stat -c %s "$here/golden-ternary.qst") bytes"
