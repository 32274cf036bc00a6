# Classes of defects found by trying qstore as users and attackers would
# (issue 10): each check here failed before its fix.
. ./lib.sh
mkst() { # mkst FILE ROWS COLS [sparse]: one BF16 weight [ROWS, COLS], values from a seed or zeros
	python3 - "$@" <<'PY'
import json, random, struct, sys
path, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = rows * cols
h = json.dumps({"w.weight": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [0, 2 * n]}}).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    if len(sys.argv) > 4:
        f.truncate(8 + len(h) + 2 * n)         # sparse: all zeros
    else:
        r = random.Random(rows * 7919 + cols)
        f.write(b"".join(struct.pack("<H", 0x3c00 + r.randrange(0x800) | r.randrange(2) << 15) for _ in range(n)))
PY
}

# 13: weights with one column, or packed with 4 KiB chunks, verify and unpack
for shape in "1 1" "4096 1" "300 7"; do
	d="$T/w-${shape/ /x}"; mkdir -p "$d"; mkst "$d/model.safetensors" $shape
	for cs in 4K 256K; do
		"$QSTORE" pack "$d" -o "$d.$cs.qst" --chunk-size $cs >/dev/null
		check "[$shape] weight, $cs chunks: verify" "$QSTORE" verify -q "$d.$cs.qst"
		rm -rf "$d.out"
		check "[$shape] weight, $cs chunks: unpack byte-exact" bash -c "'$QSTORE' unpack '$d.$cs.qst' -o '$d.out' >/dev/null && cmp '$d/model.safetensors' '$d.out/model.safetensors'"
	done
done

# 14: after one damaged file, verify still reports the next intact ones as intact
"$GENMODEL" "$T/sh" --mb 2 --hidden 128 --shards 2 >/dev/null 2>&1
"$QSTORE" pack "$T/sh" -o "$T/sh.qst" --chunk-size 64K >/dev/null
cp "$T/sh.qst" "$T/shd.qst"
printf '\xff' | dd of="$T/shd.qst" bs=1 seek=5000 conv=notrunc status=none
"$QSTORE" verify "$T/shd.qst" >"$T/v.out" 2>"$T/v.err"
check "damaged shard 1: verify fails" test $? -ne 0
check "damaged shard 1: shard 2 of both views still verifies" test "$(grep -c '^ok .*model-00002-of-00002.safetensors' "$T/v.out")" -eq 2
check "damaged shard 1: only the files holding the damaged chunk fail" grep -q "^qstore verify: .*: 2 problem(s)" "$T/v.err"

# 4: a 16 kB container claiming 2^25 rows (a legitimate all-zero [2^25, 1]
# weight) verifies in bounded memory: scales are decoded per chunk
mkdir -p "$T/tall"; mkst "$T/tall/model.safetensors" 33554432 1 sparse
"$QSTORE" pack "$T/tall" -o "$T/tall.qst" >/dev/null
check "tall weight: container under 64 kB" test "$(stat -c %s "$T/tall.qst")" -lt 65536
if [ -z "${QS_QUICK:-}" ]; then   # the sanitizer pass: ASan's shadow memory is not ours
	/usr/bin/time -f %M -o "$T/rss" "$QSTORE" verify -q "$T/tall.qst" >/dev/null 2>&1
	check "tall weight: verify peak RSS $(cat "$T/rss") KiB < 48 MiB (was 205 MiB)" test "$(cat "$T/rss")" -lt 49152
else
	check "tall weight: verifies" "$QSTORE" verify -q "$T/tall.qst"
fi
finish
