# A shard above 4 GiB (offsets past 2^32 everywhere).  Costs ~9 GB of disk
# and a few minutes, so it runs with QS_BIG=1 (make test-big), not in make check.
. ./lib.sh
if [ -z "${QS_BIG:-}" ]; then echo "  skip  (set QS_BIG=1)"; exit 0; fi
avail=$(df -Pk "$T" | awk 'NR==2{print $4}')
if [ "$avail" -lt $((10 * 1024 * 1024)) ]; then echo "  skip  (needs 10 GB free in $T)"; exit 0; fi
"$GENMODEL" "$T/big" --mb 4500 --hidden 2048 2>/dev/null
check "4.5 GB shard: pack" "$QSTORE" pack "$T/big" -o "$T/big.qst"
check "4.5 GB shard: verify (every chunk and SHA-256)" "$QSTORE" verify -q "$T/big.qst"
finish
