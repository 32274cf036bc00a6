#!/usr/bin/env bash
# make bench: size and speed of the container against zstd -3 on the same
# bytes and against the entropy floor, on a generated >= 500 MB BF16 model
# (and a ternary one, and float tensors alone) and on the real
# all-MiniLM-L6-v2 weights cast to BF16.  One run, one table.
# Timing goals live here, never in tests.
set -eu
B=$(readlink -f "${1:-build}")
W="$B/bench"
mkdir -p "$W"
PY=python3

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r)"
echo "$("$B/qstore" --version), zstd $(zstd --version | grep -o 'v[0-9.]*'), $(date -u +%Y-%m-%d)"

[ -f "$W/gen/config.json" ] || "$B/genmodel" "$W/gen" --mb 520 --hidden 1536 2>/dev/null
# a low-entropy (QMoE-style ternary) model: per-row {-a, 0, +a}, ~88% zeros
[ -f "$W/ternary/config.json" ] || "$B/genmodel" "$W/ternary" --mb 260 --hidden 1536 --ternary --seed 5 2>/dev/null
if [ -f "$B/minilm/model.safetensors" ]; then
	[ -f "$W/minilm-bf16/config.json" ] || "$B/stcast" "$B/minilm" "$W/minilm-bf16" bf16
fi

secs() { # secs CMD... : wall seconds of one run
	local t0 t1
	t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

rows=()
# the float tensors alone (embeddings, lm_head of a 48k vocabulary: FSYM parts), against ZipNN below
if [ ! -f "$W/floats/model.safetensors" ]; then
	"$B/genmodel" "$W/vocab" --mb 320 --hidden 1536 --vocab 48000 2>/dev/null
	"$B/venv/bin/python" "$(dirname "$0")/floats.py" "$W/vocab" "$W/floats" > /dev/null
	rm -rf "$W/vocab"
fi

for m in gen ternary floats minilm-bf16; do
	src="$W/$m"
	[ -d "$src" ] || continue
	q="$W/$m.qst"
	rm -f "$q"
	bytes=$(du -cb "$src"/*.safetensors | tail -1 | cut -f1)
	cat "$src"/*.safetensors > /dev/null   # page cache, as for zstd below
	t1=$(secs "$B/qstore" pack "$src" -o "$q" --threads 1)
	rm -f "$q"
	/usr/bin/time -f '%M' -o "$W/rss" "$B/qstore" pack "$src" -o "$q" --threads "$(nproc)" > "$W/pack.out"
	tall=$(sed -n 's/.* in \([0-9.]*\) s,.*/\1/p' "$W/pack.out")
	rss=$(tail -1 "$W/rss")
	"$B/qstore" info --json "$q" > "$W/info.json"
	rm -rf "$W/$m.int8"
	"$B/qstore" unpack "$q" -o "$W/$m.int8" --precision int8 > /dev/null
	i8=$(du -cb "$W/$m.int8"/*.safetensors | tail -1 | cut -f1)
	# zstd -3, one thread, each precision's weights as their own file
	cat "$src"/*.safetensors > "$W/hi.bin"; cat "$W/$m.int8"/*.safetensors > "$W/lo.bin"
	zh=$(zstd -3 -T1 -c "$W/hi.bin" | wc -c); zl=$(zstd -3 -T1 -c "$W/lo.bin" | wc -c)
	zct=$(secs zstd -3 -T1 -f "$W/hi.bin" -o "$W/hi.zst")
	zdt=$(secs sh -c "zstd -dc '$W/hi.zst' > /dev/null")
	zstd -3 -T1 -qf "$W/lo.bin" -o "$W/lo.zst"
	zdl=$(secs sh -c "zstd -dc '$W/lo.zst' > /dev/null")
	cp "$W/hi.bin" "$W/hi-$m.bin"   # for the peers (peers.py)
	"$B/qsbench" "$q" --reps 3 > "$W/dec.txt"
	get() { sed -n "s/^$1 //p" "$W/dec.txt"; }
	rows+=("$($PY - "$m" "$bytes" "$i8" "$W/info.json" "$zh" "$zl" "$t1" "$tall" "$rss" "$zct" "$zdt" "$zdl" \
		"$(get decode_high_bytes)" "$(get decode_high_seconds)" "$(get decode_int8_bytes)" "$(get decode_int8_seconds)" <<'PY'
import json, sys
a = sys.argv[1:]
m, hb, ib = a[0], int(a[1]), int(a[2])
info = json.load(open(a[3]))["summary"]
zh, zl, t1, tall, rss, zct, zdt, zdl = int(a[4]), int(a[5]), float(a[6]), float(a[7]), int(a[8]), float(a[9]), float(a[10]), float(a[11])
dhb, dhs, dib, dis = int(a[12]), float(a[13]), int(a[14]), float(a[15])
c, floor = info["container_bytes"], info["floor_bytes"]
print("|".join(str(x) for x in [m, hb, ib, c, floor, zh, zl, t1, tall, rss, zct, zdt, zdl, dhb / dhs, dib / dis]))
PY
)")
done

printf '%s\n' "${rows[@]}" > "$W/rows.txt"
$PY - "${rows[@]}" <<'PY'
import sys
rows = [r.split("|") for r in sys.argv[1:]]
print()
print("Size (MB = 1e6 bytes; floor = sum of n*H0/8 over 16-bit tensors + raw size of the others)")
print()
print("| model | BF16 | INT8 | BF16+INT8 | zstd -3 of both | entropy floor | **qstore (both)** | qstore / floor | qstore / (BF16+INT8) | qstore / zstd |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    m, hb, ib, c, fl, zh, zl = r[0], int(r[1]), int(r[2]), int(r[3]), float(r[4]), int(r[5]), int(r[6])
    print(f"| {m} | {hb/1e6:.1f} | {ib/1e6:.1f} | {(hb+ib)/1e6:.1f} | {(zh+zl)/1e6:.1f} | {fl/1e6:.1f} | **{c/1e6:.1f}** "
          f"| {c/fl:.4f} | {c/(hb+ib):.3f} | {c/(zh+zl):.3f} |")
print()
print("Speed (MB/s of output or input per the column; one core unless noted; inputs in the page cache)")
print()
print("| model | pack, 1 thread (BF16 in) | pack, all cores | pack peak RSS | zstd -3 compress BF16 | pack / zstd -3 | decode to BF16 | zstd -dc BF16 | BF16 / zstd -dc | decode to INT8 | zstd -dc INT8 | INT8 / zstd -dc |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    m, hb, ib = r[0], int(r[1]), int(r[2])
    t1, tall, rss, zct, zdt, zdl, dh, di = map(float, r[7:15])
    print(f"| {m} | {hb/t1/1e6:.0f} | {hb/tall/1e6:.0f} | {rss/1024:.0f} MiB | {hb/zct/1e6:.0f} | {zct/t1:.2f} "
          f"| **{dh/1e6:.0f}** | {hb/zdt/1e6:.0f} | **{dh*zdt/hb:.2f}** | **{di/1e6:.0f}** | {ib/zdl/1e6:.0f} | **{di*zdl/ib:.2f}** |")
print()
print("Goals (issue 11): qstore/floor <= 1.02; pack >= 1.0 x zstd -3 -T1; decode BF16 >= 1.0 x zstd -dc (ternary: >= 2.0 x); decode INT8 >= 2.0 x zstd -dc.")
PY
rm -f "$W/hi.bin" "$W/lo.bin" "$W/hi.zst" "$W/lo.zst"

# the size/speed trade of --int8-codes: the same models with every code
# stored (codes + residual) and every code derived from the floats
echo
echo "INT8 codes stored or derived (--int8-codes; auto = the default, as above; one core)"
echo
echo "| model | --int8-codes | size MB | qstore / floor | chunks derived | decode to BF16 MB/s | decode to INT8 MB/s | decode to INT4 MB/s | INT4 view seconds / INT8's |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in gen minilm-bf16 ternary; do
	[ -d "$W/$m" ] || continue
	for codes in auto stored derived; do
		q="$W/$m-$codes.qst"
		"$B/qstore" pack "$W/$m" -o "$q" --int8-codes "$codes" > /dev/null
		"$B/qsbench" "$q" --reps 3 > "$W/dec.txt"
		$PY - "$m" "$codes" <("$B/qstore" info --json "$q") "$W/dec.txt" <<'PY'
import json, sys
m, codes, info, dec = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))["summary"], {}
for line in open(sys.argv[4]):
    k, v = line.split()
    dec[k] = float(v)
c = info["container_bytes"]
print(f"| {m} | {codes} | {c/1e6:.2f} | {c/info['floor_bytes']:.4f} | {info['derived_chunks']} of {info['quant_chunks']} "
      f"| {dec['decode_high_bytes']/dec['decode_high_seconds']/1e6:.0f} | {dec['decode_int8_bytes']/dec['decode_int8_seconds']/1e6:.0f} "
      f"| {dec['decode_int4_bytes']/dec['decode_int4_seconds']/1e6:.0f} | {dec['decode_int4_seconds']/dec['decode_int8_seconds']:.2f} |")
PY
		rm -f "$q"
	done
done

# the peers that store BF16 losslessly, on the same bytes (installed by make bench-deps)
"$B/venv/bin/python" "$(dirname "$0")/peers.py" "$B" "$W"

# reads through the FUSE daemon (needs /dev/fuse)
"$B/venv/bin/python" "$(dirname "$0")/fsbench.py" "$B" "$W"
"$B/venv/bin/python" "$(dirname "$0")/hfbench.py" "$B" "$W"
