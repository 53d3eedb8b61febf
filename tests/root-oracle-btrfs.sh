#!/bin/bash
# root-oracle-btrfs: tests/oracle-run.sh on btrfs (see there).
exec "$(dirname "$0")/oracle-run.sh" btrfs "$@"
