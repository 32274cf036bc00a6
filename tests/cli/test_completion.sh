# Bash completion (packaging/completions/): commands, each command's options
# (every one that --help lists), option values, and file names by kind.
. ./lib.sh
C=$(readlink -f ../../packaging/completions)
complete_words() {   # complete_words FILE FUNC WORD...: what TAB offers after the words
	bash -c '. "$1"; shift; f=$1; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); "$f"; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$@" 2>/dev/null
}
got=$(complete_words "$C/qstore" _qstore qstore "")
check "qstore TAB offers every command" bash -c "for c in pack unpack verify info; do grep -qx \$c <<< '$got' || exit 1; done"
for cmd in pack unpack verify info hub-link; do
	offered=$(complete_words "$C/qstore" _qstore qstore $cmd -)
	for o in $("$QSTORE" $cmd --help | grep -oE -- '--[a-z0-9-]+' | sort -u); do
		check "qstore $cmd - offers $o" grep -qx -- "$o" <<< "$offered"
	done
done
vals=$(complete_words "$C/qstore" _qstore qstore pack --int8-codes "" | sort | paste -sd' ')
check "--int8-codes values are auto derived stored" test "$vals" = "auto derived stored"
mkdir -p "$T/d/model" && touch "$T/d/a.qst" "$T/d/b.txt" "$T/d/w.safetensors"
files=$(cd "$T/d" && complete_words "$C/qstore" _qstore qstore verify "" | sort | paste -sd' ')
check "verify offers containers and directories, not other files" test "$files" = "a.qst model/"
files=$(cd "$T/d" && complete_words "$C/qstore" _qstore qstore pack "" | sort | paste -sd' ')
check "pack offers model directories and .safetensors files" test "$files" = "model/ w.safetensors"
QSTOREFS=$(dirname "$QSTORE")/qstorefs
offered=$(complete_words "$C/qstorefs" _qstorefs qstorefs /srv /mnt -o "")
for o in $("$QSTOREFS" --help 2>&1 | grep -oE -- '-o [a-z_]+=' | sed 's/-o //' | sort -u); do
	check "qstorefs -o offers $o" grep -qx -- "$o" <<< "$offered"
done
after=$(complete_words "$C/qstorefs" _qstorefs qstorefs /srv /mnt -o "cache_size=1G,work")
check "qstorefs -o cache_size=1G,work offers workers=" test "$after" = "cache_size=1G,workers="
finish
