# Same input, same container: whatever --threads, and on every re-pack
# (so rsync of a re-packed unchanged model transfers nothing).
. ./lib.sh
"$GENMODEL" "$T/m" --mb 8 --hidden 256 --shards 2 2>/dev/null
"$QSTORE" pack "$T/m" -o "$T/a.qst" --threads 1 >/dev/null
"$QSTORE" pack "$T/m" -o "$T/b.qst" --threads 2 >/dev/null
"$QSTORE" pack "$T/m" -o "$T/c.qst" --threads 7 --progress >/dev/null 2>&1
check "threads 1 and 2 give identical containers" cmp "$T/a.qst" "$T/b.qst"
check "threads 7 gives the same container" cmp "$T/a.qst" "$T/c.qst"
finish
