/*
 * eventsend: relaysend's event sender: study.image_received (built from
 * pacs.db, the worklist and the preview, lib/event) and
 * mpps.status_update (mwlscp's outbox event, sent as it is) go to the
 * cloud over Azure Relay as a WebSocket sender on the events hybrid
 * connection (PROTOCOL.md §3-4): connect, one JSON message, one JSON
 * reply within 10 s, close.
 *
 * The reply settles the job through lib/outbox: created, already_exists,
 * updated or processed are done; action_not_found, appointment_not_found
 * and unknown_status park it (the cloud will never take it), as does a
 * close 1009 or an event over the cloud's 1 MiB; anything else (no
 * listener, a refused token, no reply) tries again later.  A
 * study.image_received keeps the message_id of its first attempt in the
 * job, so the cloud can tell a repeat.
 *
 * Memory: struct eventsend is the caller's; ws is the caller's context.
 */
#ifndef GW_EVENTSEND_H
#define GW_EVENTSEND_H

#include <time.h>

#include "outbox.h"
#include "relay.h"
#include "ws.h"

struct eventsend {
	struct outbox *ob;
	struct relay_auth auth;
	const char *events_hc;		/* AZURE_RELAY_EVENTS_HYBRID_CONNECTION */
	char relay_token[RELAY_TOKEN_OUT];
	time_t relay_token_at;		/* 0: none yet */
	long open_timeout_seconds;
	struct ws_ctx *ws;
	char url[RELAY_URL_MAX];
};

#define EVENTSEND_REPLY_MAX	65536	/* largest reply read */

void eventsend_image_event(struct eventsend *s, struct outbox_job *j);
void eventsend_prepared_event(struct eventsend *s, struct outbox_job *j);

#endif
