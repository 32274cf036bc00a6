#!/usr/bin/env bash
# gen-source.sh GENMODEL DIR [--ternary] - the source of the golden containers:
# sharded, every awkward value, tiny (genmodel is platform-independent: no
# libm); --ternary makes its Linear weights QMoE-style (golden-ternary.qst).
exec "$1" "$2" --mb 0.04 --hidden 32 --vocab 48 --shards 2 --special --seed 1 "${@:3}"
