/*
 * qr_serve: what every qrscp association shares: pacs.db and the store,
 * opened on first use, and C-FIND's pending responses (the matching is
 * qr_find.c's).
 */
#include "qr/qr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "dicomnet/dicomnet.h"

const char *const qr_storage_classes[] = {
	"1.2.840.10008.5.1.4.1.1.1.2",		/* Digital Mammography, For Presentation */
	"1.2.840.10008.5.1.4.1.1.1.2.1",	/* Digital Mammography, For Processing */
	"1.2.840.10008.5.1.4.1.1.13.1.3",	/* Breast Tomosynthesis */
	"1.2.840.10008.5.1.4.1.1.13.1.4",	/* Breast Projection, For Presentation */
	"1.2.840.10008.5.1.4.1.1.13.1.5",	/* Breast Projection, For Processing */
	"1.2.840.10008.5.1.4.1.1.1.1",		/* Digital X-Ray, For Presentation */
	"1.2.840.10008.5.1.4.1.1.1.1.1",	/* Digital X-Ray, For Processing */
	"1.2.840.10008.5.1.4.1.1.1",		/* Computed Radiography */
	"1.2.840.10008.5.1.4.1.1.7",		/* Secondary Capture */
	"1.2.840.10008.5.1.4.1.1.7.2",		/* Multi-frame Grayscale Byte SC */
	"1.2.840.10008.5.1.4.1.1.7.3",		/* Multi-frame Grayscale Word SC */
	"1.2.840.10008.5.1.4.1.1.7.4",		/* Multi-frame True Color SC */
	"1.2.840.10008.5.1.4.1.1.2",		/* CT */
	"1.2.840.10008.5.1.4.1.1.4",		/* MR */
	"1.2.840.10008.5.1.4.1.1.6.1",		/* Ultrasound */
	"1.2.840.10008.5.1.4.1.1.3.1",		/* Ultrasound Multi-frame */
	"1.2.840.10008.5.1.4.1.1.12.1",		/* X-Ray Angiographic */
	"1.2.840.10008.5.1.4.1.1.20",		/* Nuclear Medicine */
	"1.2.840.10008.5.1.4.1.1.128",		/* PET */
	"1.2.840.10008.5.1.4.1.1.481.2",	/* RT Dose */
	"1.2.840.10008.5.1.4.1.1.11.1",		/* Grayscale Softcopy Presentation State */
	"1.2.840.10008.5.1.4.1.1.88.22",	/* Enhanced SR */
	"1.2.840.10008.5.1.4.1.1.88.33",	/* Comprehensive SR */
	"1.2.840.10008.5.1.4.1.1.88.50",	/* Mammography CAD SR */
	"1.2.840.10008.5.1.4.1.1.88.67",	/* X-Ray Radiation Dose SR */
	"1.2.840.10008.5.1.4.1.1.104.1",	/* Encapsulated PDF */
	NULL
};

const char *const qr_transfer_syntaxes[] = {
	"1.2.840.10008.1.2.1",		/* Explicit VR Little Endian */
	"1.2.840.10008.1.2",		/* Implicit VR Little Endian */
	"1.2.840.10008.1.2.4.50",	/* JPEG Baseline */
	"1.2.840.10008.1.2.4.51",	/* JPEG Extended */
	"1.2.840.10008.1.2.4.57",	/* JPEG Lossless */
	"1.2.840.10008.1.2.4.70",	/* JPEG Lossless SV1 */
	"1.2.840.10008.1.2.4.80",	/* JPEG-LS Lossless */
	"1.2.840.10008.1.2.4.81",	/* JPEG-LS Near-Lossless */
	"1.2.840.10008.1.2.4.90",	/* JPEG 2000 Lossless */
	"1.2.840.10008.1.2.4.91",	/* JPEG 2000 */
	"1.2.840.10008.1.2.5",		/* RLE Lossless */
	NULL
};

int
qr_session_open(struct qr_session *x, struct err *e)
{
	const struct config *c = &x->set->cfg;

	if (x->db == NULL) {
		/* never create: an empty index would answer "nothing" */
		if (access(c->pacs_db_path, F_OK) == -1)
			return err_sys(e, "no pacs.db at %s (gatewayd or "
			    "dcmindex --init creates it)", c->pacs_db_path);
		if (db_open(&x->db, c->pacs_db_path, e) == -1)
			return -1;
	}
	if (!x->store_open) {
		if (store_open(&x->store, c->storage_path, 0, e) == -1)
			return -1;
		x->store_open = 1;
	}
	return 0;
}

void
qr_session_close(struct qr_session *x)
{
	if (x->db != NULL)
		db_close(x->db);
	x->db = NULL;
	x->store_open = 0;
}

/* --- C-FIND --- */

static int
send_match(void *arg, struct dcm_builder *response, const char *charset)
{
	return scp_pending_send(arg, response, charset);
}

/* The status for a request qr_find or qr_instances refused. */
uint16_t
qr_refusal_status(const struct err *e)
{
	if (e->code == QR_E_IDENTIFIER)
		return DIMSE_IDENTIFIER_MISMATCH;
	if (e->code == QR_E_LEVEL)
		return 0xC000 | 0x0100;		/* unable to process: level */
	return DIMSE_UNABLE_TO_PROCESS;
}

int
qr_parse_identifier(struct qr_session *x, const struct dimse_msg *m,
    struct dcm **out)
{
	const struct ul_context *c = ul_context(x->s->a, m->ctx_id);
	struct err e = { 0 };

	*out = NULL;
	if (m->data != NULL && dcm_parse_dataset(m->data, m->datalen,
	    c != NULL ? c->transfer_syntax : DCM_TS_IMPLICIT_LE, 0, out,
	    &e) == 0)
		return 0;
	log_warn("bad identifier", "peer=%s command=%s error=\"%s\"",
	    x->s->peer, dimse_command_name(m->cmd.command_field),
	    m->data == NULL ? "none" : e.msg);
	return -1;
}

int
qr_serve_find(struct qr_session *x, const struct dimse_msg *m,
    enum qr_root root)
{
	struct qr_find_options opt = { 0 };
	struct scp_pending f;
	struct dcm *query;
	struct err e = { 0 };
	int n;

	scp_pending_init(&f, x->s, m);
	if (qr_parse_identifier(x, m, &query) == -1)
		return scp_respond(x->s, m, DIMSE_IDENTIFIER_MISMATCH,
		    "cannot parse the identifier");
	if (qr_session_open(x, &e) == -1) {
		dcm_free(query);
		log_error("cannot open the index", "error=\"%s\"", e.msg);
		return scp_respond(x->s, m, DIMSE_UNABLE_TO_PROCESS,
		    "index unavailable");
	}
	/* (0008,0054): where to retrieve from, as dcmqrscp says too */
	opt.retrieve_aet = x->s->srv->aet;
	n = qr_find_with(x->db, root, query, &opt, send_match, &f, &e);
	dcm_free(query);
	if (f.failed)
		return -1;
	log_info("c-find", "peer=%s message_id=%u root=%s matches=%ld "
	    "status=%s", x->s->peer, m->cmd.message_id,
	    root == QR_ROOT_PATIENT ? "patient" : "study", f.sent,
	    f.cancelled ? "cancel" : n == -1 ? "failure" : "success");
	if (n == -1 && !f.cancelled) {
		log_warn("c-find refused", "peer=%s error=\"%s\"", x->s->peer,
		    e.msg);
		return scp_respond(x->s, m, qr_refusal_status(&e), e.msg);
	}
	return scp_respond(x->s, m, f.cancelled ? DIMSE_CANCEL :
	    DIMSE_SUCCESS, NULL);
}
