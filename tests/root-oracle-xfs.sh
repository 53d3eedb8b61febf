#!/bin/bash
# root-oracle-xfs: tests/oracle-run.sh on xfs (see there).
exec "$(dirname "$0")/oracle-run.sh" xfs "$@"
