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
# three views: high, int8 and (verify's default --lower) int4
check "damaged shard 1: shard 2 of every view still verifies" test "$(grep -c '^ok .*model-00002-of-00002.safetensors' "$T/v.out")" -eq 3
check "damaged shard 1: only the files holding the damaged chunk fail" grep -q "^qstore verify: .*: 3 problem(s)" "$T/v.err"
"$QSTORE" verify --lower none "$T/shd.qst" >"$T/v.out" 2>"$T/v.err"
check "damaged shard 1, --lower none: the stored views alone" grep -q "^qstore verify: .*: 2 problem(s)" "$T/v.err"

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

# 11: links out of the model directory are refused; inside it, and the HF
# cache layout (snapshots/REV/* -> ../../blobs/*), are packed
mkdir -p "$T/ln"; mkst "$T/ln/model.safetensors" 8 16
echo secret > "$T/outside.txt"
ln -s "$T/outside.txt" "$T/ln/tokenizer.json"
expect_error "link to a file outside the model" "tokenizer.json: symbolic link to .*outside.txt, outside the model directory" \
	"$QSTORE" pack "$T/ln" -o "$T/ln.qst"
check "link outside: nothing written" test ! -e "$T/ln.qst"
rm "$T/ln/tokenizer.json"; mkdir -p "$T/elsewhere"; ln -s "$T/elsewhere" "$T/ln/sub"
expect_error "link to a directory outside the model" "sub: symbolic link to .*elsewhere, outside" "$QSTORE" pack "$T/ln" -o "$T/ln.qst"
rm "$T/ln/sub"; echo '{}' > "$T/ln/real.json"; ln -s real.json "$T/ln/tokenizer.json"
check "link inside the model directory: packed" "$QSTORE" pack "$T/ln" -o "$T/ln.qst"
repo="$T/hub/models--org--m"; mkdir -p "$repo/blobs" "$repo/snapshots/abc123"
mkst "$repo/blobs/1f2e" 8 16; echo '{"model_type": "x"}' > "$repo/blobs/9a8b"
ln -s ../../blobs/1f2e "$repo/snapshots/abc123/model.safetensors"
ln -s ../../blobs/9a8b "$repo/snapshots/abc123/config.json"
check "HF cache snapshot (links into ../../blobs): packed" "$QSTORE" pack "$repo/snapshots/abc123" -o "$T/hub.qst"
check "HF cache snapshot: unpacks to the blobs' bytes" bash -c "'$QSTORE' unpack '$T/hub.qst' -o '$T/hub.out' >/dev/null && cmp '$repo/blobs/1f2e' '$T/hub.out/model.safetensors' && cmp '$repo/blobs/9a8b' '$T/hub.out/config.json'"
ln -s /etc/hostname "$repo/snapshots/abc123/tokenizer.json"
expect_error "HF cache snapshot: a link out of the repository" "outside the model directory .*models--org--m" \
	"$QSTORE" pack "$repo/snapshots/abc123" -o "$T/hub2.qst"

# 23: a directory without safetensors is not a model to quantise
mkdir -p "$T/nost"; echo '{}' > "$T/nost/config.json"
expect_error "no safetensors: refused" "no .safetensors file" "$QSTORE" pack "$T/nost" -o "$T/nost.qst"
check "no safetensors: nothing written" test ! -e "$T/nost.qst"

# 16: a source that changes while it is packed is not committed
if [ -z "${QS_QUICK:-}" ] && [ -n "${QS_SHIM:-}" ]; then
	mkdir -p "$T/grow"; mkst "$T/grow/model.safetensors" 64 64
	expect_error "source grows during pack: refused" "model.safetensors: changed while packing" \
		env LD_PRELOAD="$QS_SHIM" QS_GROW_FILE=grow/model.safetensors "$QSTORE" pack "$T/grow" -o "$T/grow.qst"
	check "source grows during pack: nothing written" bash -c "! ls -A '$T' | grep -q '^grow.qst\|^\.grow'"
fi

# 16: bad chunk sizes are refused by name, never wrapped or defaulted
for cs in 0 -1 17592186044417M 32M 63; do
	expect_error "--chunk-size $cs refused" "chunk-size wants a byte count from 64 to 16M.*got '$cs'" \
		"$QSTORE" pack "$T/ln" -o "$T/cs.qst" --chunk-size "$cs"
done
# 16: a full disk names the container being written, and leaves nothing
if [ "$(id -u)" = 0 ] && mkdir -p "$T/tiny" && mount -t tmpfs -o size=64k tmpfs "$T/tiny" 2>/dev/null; then
	expect_error "disk full: the message names the output" "tiny/full.qst: write error: No space left" \
		"$QSTORE" pack "$T/sh" -o "$T/tiny/full.qst"
	check "disk full: nothing left behind" test -z "$(ls -A "$T/tiny")"
	umount "$T/tiny"
fi
# 9: a temporary left by a killed pack goes with the next pack of that name
dead=$(sh -c 'echo $$')
touch "$T/.ln.qst.tmp.$dead.0badc0de"
"$QSTORE" pack "$T/ln" -o "$T/ln.qst" --force >/dev/null 2>&1
check "stale temporary of a dead pack removed" test ! -e "$T/.ln.qst.tmp.$dead.0badc0de"
# 23: pack and unpack create files the way the umask says
rm -f "$T/um.qst"; (umask 027; "$QSTORE" pack "$T/ln" -o "$T/um.qst" >/dev/null)
check "pack under umask 027: container mode 640" test "$(stat -c %a "$T/um.qst")" = 640
(umask 022; "$QSTORE" unpack "$T/um.qst" -o "$T/um022" >/dev/null)
check "unpack under umask 022: directory 755, files 644" test "$(stat -c %a "$T/um022") $(stat -c %a "$T/um022/model.safetensors")" = "755 644"
(umask 077; "$QSTORE" unpack "$T/um.qst" -o "$T/um077" >/dev/null)
check "unpack under umask 077: directory 700, files 600" test "$(stat -c %a "$T/um077") $(stat -c %a "$T/um077/model.safetensors")" = "700 600"

# 12: names with control characters cannot forge lines or drive the terminal
mkdir -p "$T/esc"
python3 - "$T/esc/model.safetensors" <<'PY'
import json, struct, sys
name = "evil\n<0>emerg: fake\x1b[2J.weight"
h = json.dumps({name: {"dtype": "BF16", "shape": [4, 8], "data_offsets": [0, 64]}}).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + bytes(range(64)))
PY
"$QSTORE" pack "$T/esc" -o "$T/esc.qst" >/dev/null
"$QSTORE" info "$T/esc.qst" > "$T/esc.info"
check "info: no raw ESC byte" bash -c "! grep -q $'\x1b' '$T/esc.info'"
check "info: the name's newline shown as \\x0a, no forged line" bash -c "grep -q 'evil\\\\x0a<0>emerg: fake\\\\x1b\\[2J.weight' '$T/esc.info' && ! grep -q '^<0>emerg' '$T/esc.info'"
cp "$T/esc.qst" "$T/escd.qst"
printf '\xff\xff\xff\xff' | dd of="$T/escd.qst" bs=1 seek=200 conv=notrunc status=none
"$QSTORE" verify "$T/escd.qst" >/dev/null 2>"$T/esc.err"
check "verify error: one line per problem, the name escaped" bash -c "! grep -q '^<0>emerg' '$T/esc.err' && ! grep -q $'\x1b' '$T/esc.err'"
finish
