#!/bin/bash
# root-oracle-ext4: tests/oracle-run.sh on ext4 (see there).
exec "$(dirname "$0")/oracle-run.sh" ext4 "$@"
