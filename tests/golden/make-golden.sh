#!/usr/bin/env bash
# make-golden.sh BUILD_DIR - regenerate the committed golden container.
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
"$B/qstore" unpack "$here/golden.qst" -o "$t/high"
"$B/qstore" unpack "$here/golden.qst" -o "$t/int8" --precision int8
(cd "$t" && find high int8 -type f | LC_ALL=C sort | xargs sha256sum) > "$here/golden.sha256"
echo "golden: $(stat -c %s "$here/golden.qst") bytes, stored codes $(stat -c %s "$here/golden-stored.qst") bytes"
