# The command line as its users meet it: per-command help listing every
# option and its default, exit codes (0 ok, 1 error, 2 bad usage) with
# messages naming the program and what is missing, progress lines when
# stderr is not a terminal, -q, --force (an identical result leaves the old
# file untouched), and info's layout.
. ./lib.sh
"$GENMODEL" "$T/m" --mb 2 --hidden 128 --seed 11 >/dev/null 2>&1

rc_of() { "$@" >/dev/null 2>&1; echo $?; }
expect_rc() {   # expect_rc WHAT RC CMD...: exit status RC
	local what=$1 want=$2; shift 2
	local got; got=$(rc_of "$@")
	if [ "$got" = "$want" ]; then pass "$what (exit $got)"; else fail "$what: exit $got, wanted $want"; fi
}

# help: every option of each command, with the defaults that matter
for cmd in pack unpack verify info hub-link; do
	check "qstore $cmd --help exits 0 and starts with its usage" bash -c \
		"'$QSTORE' $cmd --help | head -1 | grep -q '^usage: qstore $cmd'"
done
check "pack --help lists every option" bash -c "h=\$('$QSTORE' pack --help); for o in --output --force --threads \
	--chunk-size --int8-codes --no-progress --quiet --help; do grep -q -- \"\$o\" <<< \"\$h\" || exit 1; done"
check "pack --help gives the defaults" bash -c "'$QSTORE' pack --help | grep -q 'default: one per online CPU' &&
	'$QSTORE' pack --help | grep -q 'default: 1M' && '$QSTORE' pack --help | grep -q 'default: auto'"
check "unpack --help gives --precision's default" bash -c "'$QSTORE' unpack --help | grep -q 'default: high'"
check "qstore help pack is pack --help" bash -c "diff <('$QSTORE' help pack) <('$QSTORE' pack --help)"
check "qstore -V prints the version" bash -c "'$QSTORE' -V | grep -q '^qstore [0-9.]* (container format'"
check "qstore --help names the exit codes" bash -c "'$QSTORE' --help | grep -q 'Exit status: 0 success, 1 error, 2 bad usage'"

# exit codes and messages
"$QSTORE" pack "$T/m" -o "$T/m.qst" -q || fail "pack"
expect_rc "no arguments" 2 "$QSTORE"
expect_rc "unknown command" 2 "$QSTORE" frobnicate
expect_rc "help for an unknown command" 2 "$QSTORE" help frobnicate
for cmd in pack unpack verify info hub-link; do
	expect_rc "$cmd --bogus" 2 "$QSTORE" $cmd --bogus "$T/m.qst"
done
expect_error "an unknown option is named with the program" "^qstore pack: unknown option '--bogus'" \
	"$QSTORE" pack --bogus "$T/m" -o "$T/x.qst"
expect_error "an option without its value" "^qstore pack: option '-o' needs a value" "$QSTORE" pack "$T/m" -o
expect_rc "pack without arguments" 2 "$QSTORE" pack
expect_error "pack without arguments names both" "missing SRC and -o OUT.qst" "$QSTORE" pack
expect_error "unpack without arguments names both" "^qstore unpack: missing X.qst and -o DIR" "$QSTORE" unpack
expect_rc "unpack without arguments" 2 "$QSTORE" unpack
expect_error "unpack without -o" "missing -o DIR" "$QSTORE" unpack "$T/m.qst"
expect_rc "verify without a container" 2 "$QSTORE" verify
expect_rc "info with two containers" 2 "$QSTORE" info "$T/m.qst" "$T/m.qst"
expect_rc "a missing container" 1 "$QSTORE" info "$T/nothing.qst"
expect_rc "--threads 0" 2 "$QSTORE" pack "$T/m" -o "$T/x.qst" --threads 0

# --force: refuse, replace, or leave an identical container alone
expect_error "pack refuses an existing OUT" "m.qst: already exists \\(replacing it needs --force\\)" \
	"$QSTORE" pack "$T/m" -o "$T/m.qst"
expect_rc "pack refusing an existing OUT" 1 "$QSTORE" pack "$T/m" -o "$T/m.qst"
before=$(stat -c '%i %Y.%y' "$T/m.qst"); sleep 1.1
out=$("$QSTORE" pack "$T/m" -o "$T/m.qst" --force 2>&1)
check "pack --force of the same model reports the file unchanged" grep -q "left untouched" <<< "$out"
check "... and leaves its inode and mtime" test "$before" = "$(stat -c '%i %Y.%y' "$T/m.qst")"
check "... and no temporary file" bash -c "! ls -A '$T' | grep -q '\\.tmp\\.'"
"$GENMODEL" "$T/m2" --mb 2 --hidden 128 --seed 12 >/dev/null 2>&1
"$QSTORE" pack "$T/m2" -o "$T/m.qst" --force -q
check "pack --force of another model replaces it" bash -c "'$QSTORE' unpack '$T/m.qst' -o '$T/m2.out' -q && diff -r '$T/m2' '$T/m2.out'"
check "-q prints nothing on success" bash -c "[ -z \"\$('$QSTORE' pack '$T/m' -o '$T/q.qst' -q 2>&1)\" ]"

# progress when stderr is not a terminal: plain lines (every 5 s by default;
# QSTORE_PROGRESS_SECONDS=0 shows every report, so even a small job has one)
line='^qstore %s: [0-9.]+ of [0-9.]+ MB \([0-9]+%%\), [0-9.]+ MB/s, ETA [0-9]+ s$'
QSTORE_PROGRESS_SECONDS=0 "$QSTORE" pack "$T/m" -o "$T/p.qst" 2>"$T/p.err" >/dev/null
check "pack: plain progress lines on a non-terminal" grep -Eq "$(printf "$line" pack)" "$T/p.err"
check "pack: the last one at 100%" bash -c "tail -1 '$T/p.err' | grep -q '(100%)'"
check "pack: no carriage returns or escapes in them" bash -c "! grep -q \$'[\\r\\x1b]' '$T/p.err'"
QSTORE_PROGRESS_SECONDS=0 "$QSTORE" unpack "$T/p.qst" -o "$T/p.out" 2>"$T/u.err" >/dev/null
check "unpack: plain progress lines" grep -Eq "$(printf "$line" unpack)" "$T/u.err"
QSTORE_PROGRESS_SECONDS=0 "$QSTORE" verify "$T/p.qst" 2>"$T/v.err" >/dev/null
check "verify: plain progress lines" grep -Eq "$(printf "$line" verify)" "$T/v.err"
QSTORE_PROGRESS_SECONDS=0 "$QSTORE" verify "$T/p.qst" --no-progress 2>"$T/n.err" >/dev/null
check "--no-progress: none" test ! -s "$T/n.err"
"$QSTORE" pack "$T/m" -o "$T/d.qst" 2>"$T/d.err" >/dev/null
check "a job shorter than the interval prints no progress line" test ! -s "$T/d.err"

# info: the layout
"$QSTORE" info "$T/m.qst" > "$T/info.txt"
check "info: sizes with units" grep -Eq '^size +[0-9.]+ (B|kB|MB|GB) \([0-9]+ bytes\)' "$T/info.txt"
check "info: how many tensors were quantised, and why not the others" bash -c \
	"grep -Eq '^quantised +[0-9]+ of [0-9]+ tensors' '$T/info.txt' && grep -Eq '^ +[0-9]+  embedding' '$T/info.txt'"
check "info: the tensor table has a header and aligned columns" bash -c \
	"grep -A3 '^tensors:' '$T/info.txt' | awk 'NR>1 { print index(\$0, \"BF16\") + index(\$0, \"dtype\") }' | sort -u | wc -l | grep -qx 1"
st() { python3 - "$@" <<'PY'
import struct, sys
path, js = sys.argv[1], sys.argv[2].encode()
js += b' ' * ((8 - len(js) % 8) % 8)
open(path, 'wb').write(struct.pack('<Q', len(js)) + js)
PY
}
st "$T/empty.safetensors" '{"w.weight":{"dtype":"BF16","shape":[0,4],"data_offsets":[0,0]}}'
"$QSTORE" pack "$T/empty.safetensors" -o "$T/empty.qst" -q
check "info: a floor of 0 gives no ratio against it" bash -c "'$QSTORE' info '$T/empty.qst' | grep -q 'container/floor n/a'"
finish
