#!/usr/bin/env bash
# Runs every tests/cli/test_*.sh; QS_QUICK=1 skips the slow ones (used for
# the sanitizer pass, which repeats the fast ones under ASan+UBSan).
QSTORE=$(readlink -f "${QSTORE:?}") GENMODEL=$(readlink -f "${GENMODEL:?}")
[ -n "${QS_PYTHON:-}" ] && QS_PYTHON=$(cd "$(dirname "$QS_PYTHON")" && pwd)/$(basename "$QS_PYTHON")  # keep the venv symlink
[ -n "${QS_MINILM:-}" ] && QS_MINILM=$(readlink -f "$QS_MINILM")
export QSTORE GENMODEL QS_PYTHON QS_MINILM
cd "$(dirname "$0")" || exit 1
rc=0
for t in test_*.sh; do
	echo "== cli/$t (qstore: ${QSTORE})"
	bash "$t" || rc=1
done
exit $rc
