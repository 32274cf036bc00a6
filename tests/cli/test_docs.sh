# The man pages: troff that renders without a single warning (a line that
# begins with a dot is a macro call: ".safetensors file" once dropped half a
# sentence), and every option the commands accept is documented in them.
. ./lib.sh
M=../../packaging/man
QSTOREFS=$(dirname "$QSTORE")/qstorefs
for page in qstore.1 qstorefs.8; do
	groff -ww -man -z "$M/$page" 2>"$T/$page.warn"
	check "$page renders with groff -ww without a warning" test ! -s "$T/$page.warn"
	[ -s "$T/$page.warn" ] && sed 's/^/        /' "$T/$page.warn"
done
groff -man -Tascii -P-cbou "$M/qstore.1" > "$T/qstore.txt" 2>/dev/null
groff -man -Tascii -P-cbou "$M/qstorefs.8" > "$T/qstorefs.txt" 2>/dev/null
for cmd in pack unpack verify info hub-link; do
	for o in $("$QSTORE" $cmd --help | grep -oE -- '--[a-z0-9-]+' | sort -u); do
		check "qstore.1 documents $cmd $o" grep -q -- "$o" "$T/qstore.txt"
	done
done
for o in $("$QSTOREFS" --help 2>&1 | grep -oE -- '-o [a-z_]+=' | sed 's/-o //' | sort -u); do
	check "qstorefs.8 documents $o" grep -q -- "$o" "$T/qstorefs.txt"
done
for s in "EXIT STATUS" EXAMPLES FILES ENVIRONMENT; do
	check "qstore.1 has $s" grep -q "^$s" "$T/qstore.txt"
done
for s in "EXIT STATUS" EXAMPLES FILES; do
	check "qstorefs.8 has $s" grep -q "^$s" "$T/qstorefs.txt"
done
finish
