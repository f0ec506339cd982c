/* qr_move: C-MOVE and C-GET (placeholder: refused with a clear status). */
#include "qr.h"

#include "scp.h"

int
qr_serve_move(struct qr_session *x, const struct dimse_msg *m,
    enum qr_root root)
{
	(void)root;
	return scp_respond(x->s, m, DIMSE_UNABLE_TO_PROCESS,
	    "C-MOVE is not implemented yet");
}

int
qr_serve_get(struct qr_session *x, const struct dimse_msg *m,
    enum qr_root root)
{
	(void)root;
	return scp_respond(x->s, m, DIMSE_UNABLE_TO_PROCESS,
	    "C-GET is not implemented yet");
}
