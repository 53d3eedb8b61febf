#!/bin/bash
# root-oracle-tmpfs: tests/oracle-run.sh on tmpfs (see there).
exec "$(dirname "$0")/oracle-run.sh" tmpfs "$@"
