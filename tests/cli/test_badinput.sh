# Bad sources, bad options and damaged containers: a clear message naming
# the file (and tensor), a non-zero exit, no crash, nothing written.
. ./lib.sh
st() { # st FILE JSON [DATA_BYTES]: a safetensors file with that header
	python3 - "$@" <<'PY'
import struct, sys
path, js = sys.argv[1], sys.argv[2].encode()
data = int(sys.argv[3]) if len(sys.argv) > 3 else 0
js += b' ' * ((8 - len(js) % 8) % 8)
open(path, 'wb').write(struct.pack('<Q', len(js)) + js + b'\x11' * data)
PY
}
mkdir -p "$T/src"
echo "hello" > "$T/src/notst.safetensors"
expect_error "not a safetensors file" "notst.safetensors" "$QSTORE" pack "$T/src/notst.safetensors" -o "$T/o.qst"
st "$T/src/ok.safetensors" '{"a.weight":{"dtype":"BF16","shape":[2,4],"data_offsets":[0,16]}}' 16
head -c 30 "$T/src/ok.safetensors" > "$T/src/trunc.safetensors"
expect_error "truncated file" "trunc.safetensors.*(truncated|does not fit)" "$QSTORE" pack "$T/src/trunc.safetensors" -o "$T/o.qst"
python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('<Q', 200000000) + b'{}')" "$T/src/huge.safetensors"
expect_error "header over 100 MB" "100,000,000" "$QSTORE" pack "$T/src/huge.safetensors" -o "$T/o.qst"
st "$T/src/overlap.safetensors" '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' 12
expect_error "overlapping offsets" "overlap.safetensors: tensor 'b'.*overlap" "$QSTORE" pack "$T/src/overlap.safetensors" -o "$T/o.qst"
st "$T/src/nul.safetensors" '{"a.weight":{"dtype":"BF16\u0000x","shape":[2],"data_offsets":[0,4]}}' 4
expect_error "NUL inside a dtype string" "nul.safetensors.*u0000" "$QSTORE" pack "$T/src/nul.safetensors" -o "$T/o.qst"
st "$T/src/nulkey.safetensors" '{"a\u0000b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}' 4
expect_error "NUL inside a tensor name" "nulkey.safetensors.*u0000" "$QSTORE" pack "$T/src/nulkey.safetensors" -o "$T/o.qst"
st "$T/src/gap.safetensors" '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}' 20
expect_error "gapped offsets" "gap.safetensors: tensor 'b'.*gap" "$QSTORE" pack "$T/src/gap.safetensors" -o "$T/o.qst"
st "$T/src/size.safetensors" '{"w.weight":{"dtype":"BF16","shape":[3,4],"data_offsets":[0,16]}}' 16
expect_error "dtype/shape size mismatch" "size.safetensors: tensor 'w.weight'" "$QSTORE" pack "$T/src/size.safetensors" -o "$T/o.qst"
mkdir -p "$T/dup"
st "$T/dup/model-00001-of-00002.safetensors" '{"x.weight":{"dtype":"BF16","shape":[2,4],"data_offsets":[0,16]}}' 16
st "$T/dup/model-00002-of-00002.safetensors" '{"x.weight":{"dtype":"BF16","shape":[2,4],"data_offsets":[0,16]}}' 16
expect_error "tensor repeated across shards" "'x.weight' appears in both" "$QSTORE" pack "$T/dup" -o "$T/o.qst"
mkdir -p "$T/miss"
st "$T/miss/model-00001-of-00002.safetensors" '{"x.weight":{"dtype":"BF16","shape":[2,4],"data_offsets":[0,16]}}' 16
echo '{"weight_map":{"x.weight":"model-00001-of-00002.safetensors","y.weight":"model-00002-of-00002.safetensors"}}' > "$T/miss/model.safetensors.index.json"
expect_error "index naming a missing shard" "index.json: tensor 'y.weight' maps to shard 'model-00002-of-00002.safetensors', which is missing" "$QSTORE" pack "$T/miss" -o "$T/o.qst"
echo '{"weight_map":{"x.weight":"../model-00001-of-00002.safetensors"}}' > "$T/miss/model.safetensors.index.json"
expect_error "shard name with .." "invalid shard name" "$QSTORE" pack "$T/miss" -o "$T/o.qst"
echo '{"weight_map":{"x.weight":"sub/model-00001-of-00002.safetensors"}}' > "$T/miss/model.safetensors.index.json"
expect_error "shard name with /" "invalid shard name" "$QSTORE" pack "$T/miss" -o "$T/o.qst"
check "no output left behind by any failure" bash -c "! ls -A '$T' | grep -E 'o\.qst|\.tmp\.'"
st "$T/src/unknown.safetensors" '{"p":{"dtype":"F4_E2M1","shape":[3],"data_offsets":[0,3]},"w.weight":{"dtype":"BF16","shape":[2,4],"data_offsets":[3,19]}}' 19
check "unknown dtype is stored losslessly, not quantised" bash -c "'$QSTORE' pack '$T/src/unknown.safetensors' -o '$T/u.qst' && '$QSTORE' info '$T/u.qst' | grep -q 'unknown dtype: stored losslessly' && '$QSTORE' unpack '$T/u.qst' -o '$T/u' && cmp '$T/u/unknown.safetensors' '$T/src/unknown.safetensors'"

# options
expect_error "--threads 0" "--threads wants a number" "$QSTORE" pack "$T/src/ok.safetensors" -o "$T/o.qst" --threads 0
expect_error "bad --int8-codes" "--int8-codes wants auto, stored or derived, got 'fast'" \
	"$QSTORE" pack "$T/src/ok.safetensors" -o "$T/o.qst" --int8-codes fast
"$QSTORE" pack "$T/src/ok.safetensors" -o "$T/o.qst" --int8-codes fast 2>/dev/null
check "bad --int8-codes exits 2" test $? -eq 2
expect_error "unknown option" "unknown option '--bogus'" "$QSTORE" pack --bogus "$T/src/ok.safetensors" -o "$T/o.qst"
expect_error "missing -o" "missing -o OUT.qst" "$QSTORE" pack "$T/src/ok.safetensors"
expect_error "unknown command" "unknown command" "$QSTORE" frobnicate
expect_error "bad --precision" "high, int8 or int2..int7" "$QSTORE" unpack x.qst -o "$T/x" --precision fp4
expect_error "output directory missing" "cannot create the output" "$QSTORE" pack "$T/src/ok.safetensors" -o "$T/nodir/o.qst"
"$QSTORE" pack "$T/src/ok.safetensors" -o "$T/ok.qst" >/dev/null
mkdir -p "$T/exists"
expect_error "unpack into an existing directory" "already exists" "$QSTORE" unpack "$T/ok.qst" -o "$T/exists"
expect_error "not a container" "not a qstore container" "$QSTORE" info "$T/src/ok.safetensors"
expect_error "missing container" "No such file" "$QSTORE" verify "$T/none.qst"

# interrupted pack: SIGINT removes the temporary file
if [ -z "${QS_QUICK:-}" ]; then
	"$GENMODEL" "$T/big" --mb 300 --hidden 512 2>/dev/null
	"$QSTORE" pack "$T/big" -o "$T/big.qst" --threads 1 >/dev/null 2>"$T/int.err" & pid=$!
	# interrupt once the temporary exists (packing 300 MB on one core takes
	# seconds: no fixed sleep that a faster packer could outrun)
	for _ in $(seq 500); do ls -A "$T" | grep -q 'big\.qst' && break; sleep 0.01; done
	kill -INT $pid; wait $pid; rc=$?
	if [ $rc -ne 0 ] && ! ls -A "$T" | grep -q 'big.qst' && grep -q interrupted "$T/int.err"; then pass "SIGINT during pack: exit $rc, nothing left"; else fail "SIGINT during pack (rc $rc): $(ls -A "$T")"; fi
fi
finish
