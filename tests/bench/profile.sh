#!/usr/bin/env bash
# make profile: where one core's decoding time goes, per function, for the
# high (BF16) and INT8 views of make bench's generated model read through
# qs_read (qsbench), as perf samples.  Printed as a table for README.md.
set -eu
B=$(readlink -f "${1:-build}")
W="$B/bench"
q="$W/gen.qst"
if ! "$B/qstore" info "$q" > /dev/null 2>&1; then   # missing, or from another format version
	rm -f "$q"
	mkdir -p "$W"
	[ -f "$W/gen/config.json" ] || "$B/genmodel" "$W/gen" --mb 520 --hidden 1536 2>/dev/null
	"$B/qstore" pack "$W/gen" -o "$q" > /dev/null
fi
cat "$q" > /dev/null   # in the page cache, as the table says (make bench drops it)
perf record -q -o "$W/perf.data" "$B/qsbench" "$q" --reps 1 > /dev/null 2>&1
echo "| share of samples | function |"
echo "|---|---|"
perf report -i "$W/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
	awk '/^ +[0-9.]+%/ { p = $1; sub(/%/, "", p); if (p + 0 >= 0.5) printf "| %.1f%% | `%s` |\n", p, $3 }' | head -12
