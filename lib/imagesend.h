/*
 * imagesend: relaysend's upload worker: an image job becomes the Manage
 * API's PUT {CLOUD_API_ENDPOINT}/{source_message_id} (PROTOCOL.md §5) of
 * the stored object, in the configured upload mode (lib/transcode); an
 * image_failure job becomes the PATCH …/failure that reports an image the
 * cloud rejected for good.
 *
 * Every job is settled through lib/outbox: done on 2xx; tried again later
 * on no answer, 408, 429, 5xx and 401/403 (the token or the cloud's
 * configuration is wrong: logged as such, the token made again); any
 * other 4xx parks the image in failed/ and queues its failure report.  A
 * request cut short by the stop flag puts the job back unchanged.  An
 * upload asked for by images.request (requested=1) is sent even when the
 * instance was uploaded before.
 *
 * Memory: struct imagesend is the caller's; it points at the caller's
 * outbox, store and upload handle.
 */
#ifndef GW_IMAGESEND_H
#define GW_IMAGESEND_H

#include <limits.h>
#include <time.h>

#include "outbox.h"
#include "relay.h"
#include "store.h"
#include "transcode.h"
#include "upload.h"

struct imagesend {
	struct outbox *ob;
	struct store *store;
	struct upload *up;
	const char *endpoint;		/* CLOUD_API_ENDPOINT */
	const char *token, *token_command;
	char authorization[RELAY_TOKEN_OUT];
	time_t token_at;		/* 0: none yet */
	enum upload_mode mode;		/* RELAY_UPLOAD_MODE */
	char scratch[PATH_MAX];		/* where transcoded copies are made */
};

void imagesend_image(struct imagesend *s, struct outbox_job *j);
void imagesend_failure_report(struct imagesend *s, struct outbox_job *j);

#endif
