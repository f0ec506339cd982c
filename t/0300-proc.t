#!/bin/sh
# proc_run (lib/base/proc): a helper program fed and read through pipes, with
# a deadline that kills it, and its exit status handed back.
. "${0%/*}/lib.sh"
"$GW_BUILD/t/proc_test"
