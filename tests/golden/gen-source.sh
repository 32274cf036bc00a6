#!/usr/bin/env bash
# gen-source.sh GENMODEL DIR - the source of the golden container: sharded,
# every awkward value, tiny (genmodel is platform-independent: no libm).
exec "$1" "$2" --mb 0.04 --hidden 32 --vocab 48 --shards 2 --special --seed 1
