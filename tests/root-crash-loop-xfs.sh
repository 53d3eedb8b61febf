#!/bin/bash
# root-crash-loop-xfs: tests/root-crash-loop.sh on xfs (see there).
exec "$(dirname "$0")/root-crash-loop.sh" xfs "$@"
