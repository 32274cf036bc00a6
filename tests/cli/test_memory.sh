# Peak memory of pack stays under 512 MiB for a model bigger than that.
. ./lib.sh
if [ -n "${QS_QUICK:-}" ]; then echo "  skip  (QS_QUICK)"; exit 0; fi
"$GENMODEL" "$T/big" --mb 600 --hidden 1024 --shards 2 2>/dev/null
/usr/bin/time -f '%M' -o "$T/rss" "$QSTORE" pack "$T/big" -o "$T/big.qst" > "$T/pack.out"
rss_kb=$(tail -1 "$T/rss")
src=$(du -sb "$T/big" | cut -f1)
if [ "$src" -gt $((512 * 1024 * 1024)) ] && [ "$rss_kb" -lt $((512 * 1024)) ]; then
	pass "pack of a $((src / 1048576)) MiB model peaks at $((rss_kb / 1024)) MiB RSS (< 512 MiB)"
else
	fail "pack of $src bytes peaked at $rss_kb KiB"
fi
check "the big container verifies" "$QSTORE" verify -q "$T/big.qst"
finish
