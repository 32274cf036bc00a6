# Scale: 100,000 tensors in one file (half of them quantised, each with its
# own scale stream), and a shard above 4 GiB is exercised by offsets only in
# the unit tests (it would cost too much disk here).
. ./lib.sh
if [ -n "${QS_QUICK:-}" ]; then echo "  skip  (QS_QUICK)"; exit 0; fi
python3 - "$T/many.safetensors" <<'PY'
import json, struct, sys, random
random.seed(1)
hdr, blobs, off = {}, [], 0
for i in range(100000):
    name = f"model.layers.{i // 2}.{'proj' if i % 2 == 0 else 'norm'}.weight"
    shape = [2, 4] if i % 2 == 0 else [4]
    n = 2 * (8 if i % 2 == 0 else 4)
    data = bytes(random.getrandbits(8) & 0x3f if k % 2 else random.getrandbits(8) for k in range(n))
    hdr[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}
    blobs.append(data); off += n
js = json.dumps(hdr, separators=(",", ":")).encode()
js += b" " * ((8 - len(js) % 8) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))
PY
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$T/rss" "$QSTORE" pack "$T/many.safetensors" -o "$T/many.qst" > /dev/null
rss=$(tail -1 "$T/rss")
if [ -f "$T/many.qst" ] && [ "$rss" -lt $((512 * 1024)) ]; then pass "100,000 tensors: pack, peak RSS $((rss / 1024)) MiB"; else fail "100,000 tensors: pack (RSS $rss KiB)"; fi
check "100,000 tensors: verify" "$QSTORE" verify -q "$T/many.qst"
check "100,000 tensors: byte-identical" bash -c "'$QSTORE' unpack '$T/many.qst' -o '$T/out' && cmp '$T/many.safetensors' '$T/out/many.safetensors'"
echo "        $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc -l)") s for pack + verify + unpack"
finish
