/* qr_commit: Storage Commitment Push Model (placeholder: refused). */
#include "qr.h"

#include "scp.h"

int
qr_serve_commit(struct qr_session *x, const struct dimse_msg *m)
{
	return scp_respond(x->s, m, DIMSE_PROCESSING_FAILURE,
	    "storage commitment is not implemented yet");
}

int
qr_commit_resume(const struct qr_settings *set, struct err *e)
{
	(void)set; (void)e;
	return 0;
}
