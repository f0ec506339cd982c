#!/bin/sh
# lib/image/pixel and lib/image/render on hand-made datasets (t/unit/render_test.c):
# the VOI functions, inversion, padding, reduction, aspect, signed data,
# bounds, and dcm_pixel_fragments.
. "${0%/*}/lib.sh"
[ -x "$GW_BUILD/t/render_test" ] || skip_all "render_test not built (make units)"
"$GW_BUILD/t/render_test"
