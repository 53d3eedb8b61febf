#!/bin/bash
# contract: doc/CONTRACT.md says what the code and the man pages say (see
# tests/contract.py): options, config keys, control verbs, commands, exit
# statuses, change kinds and the database schema.  No root needed.
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
PY=$(command -v python3) || { echo "ERROR: contract: python3 missing" >&2; exit 99; }
exec "$PY" "$top_srcdir/tests/contract.py" "$top_srcdir" "$top_builddir"
