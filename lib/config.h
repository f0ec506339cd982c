/*
 * config: where things are and what the gateway is called, from the
 * environment, with the seed's names.
 *
 * Every path left unset lives under GATEWAY_DATA_DIR (default ./var):
 *
 *   PACS_STORAGE_PATH      $GATEWAY_DATA_DIR/store
 *   PACS_DB_PATH           $GATEWAY_DATA_DIR/pacs.db
 *   WORKLIST_DB_PATH       $GATEWAY_DATA_DIR/worklist.db
 *   GATEWAY_SPOOL_DIR      $GATEWAY_DATA_DIR/spool
 *   GATEWAY_INCOMING_DIR   $GATEWAY_DATA_DIR/incoming
 *   GATEWAY_QUARANTINE_DIR $GATEWAY_DATA_DIR/quarantine
 *
 * and PACS_AET (SCREENING_PACS), PACS_PORT (4244), WORKLIST_AET
 * (SCREENING_MWL), WORKLIST_PORT (4243), QR_AET (SCREENING_QR), QR_PORT
 * (4246).  Programs override single fields from their options after
 * loading.
 *
 * gateway.env: config_load() first reads the configuration file gatewayd
 * reads: $GATEWAY_ENV_FILE, else /etc/screening-gateway/gateway.env, else
 * ./gateway.env (a missing default file is fine; a named file that cannot
 * be read is an error).  Each KEY=VALUE of the file whose KEY is not in
 * the environment is put there with setenv(), so that every getenv() of
 * the program sees it too: the environment wins, the first line of a key
 * wins over later ones, and values are taken literally, never evaluated
 * (config_env_parse).  config_load() creates nothing.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <limits.h>

#include "err.h"

struct config {
	char data_dir[PATH_MAX];
	char storage_path[PATH_MAX];
	char pacs_db_path[PATH_MAX];
	char worklist_db_path[PATH_MAX];
	char spool_dir[PATH_MAX];
	char incoming_dir[PATH_MAX];
	char quarantine_dir[PATH_MAX];
	char pacs_aet[17];
	int pacs_port;
	char worklist_aet[17];
	int worklist_port;
	char qr_aet[17];
	int qr_port;
};

/* Fill c from the environment.  -1 with e set on a bad value (a port
 * that is not a number, an AE title longer than 16 characters, ...). */
int config_load(struct config *c, struct err *e);

/*
 * The configuration file: the path config_load() reads, in out; 0, or 1
 * when there is none (no GATEWAY_ENV_FILE and no default file).
 */
int config_env_file(char *out, size_t outsz);

/*
 * gateway.env, parsed exactly as gatewayd(8) parses it, from a buffer
 * (it need not end in NUL or a newline; NUL bytes make a line bad).  Per
 * line: a trailing CR is dropped; leading blanks and tabs and then one
 * "export " are skipped; empty lines and lines starting with # are
 * comments; the name is everything before the first '=' and must match
 * [A-Z_][A-Z0-9_]*; the value is everything after it, without one pair
 * of enclosing double or single quotes.  Nothing is expanded.
 *
 * on_value(key, value, arg) for each setting (both NUL-terminated,
 * valid during the call only); on_bad(line_number, why, arg) for each
 * bad line ("without =", "bad name"), when not NULL.  A non-zero return
 * of a callback stops the parse and is returned; else 0.
 */
int config_env_parse(const char *text, size_t len,
    int (*on_value)(const char *key, const char *value, void *arg),
    void (*on_bad)(int line, const char *why, void *arg), void *arg);

/*
 * Read the file config_env_file() names and setenv() each of its values
 * not already set.  0 when done or there is no file; -1 with e set when a
 * named file cannot be read.
 */
int config_env_load(struct err *e);

/* A whole decimal number in [lo, hi] (option values): 0, or -1. */
int config_parse_int(const char *s, int lo, int hi, int *out);

/*
 * A whole-number setting from the environment: def when name is unset or
 * empty; -1 with e naming the variable when it is not in [lo, hi].
 */
int config_env_long(const char *name, long lo, long hi, long def, long *out,
    struct err *e);

/*
 * What of the cloud is configured.  Images go to the Manage API when
 * CLOUD_API_ENDPOINT is set; events (study.image_received,
 * mpps.status_update, gateway.alert) go over the relay when
 * AZURE_RELAY_NAMESPACE and AZURE_RELAY_EVENTS_HYBRID_CONNECTION are.
 * gatewayd runs relaysend when either is true (its wants_relaysend).
 * A producer queues a job for the cloud only when the part that would
 * send it is configured: with the cloud off, nothing accumulates that
 * nothing will ever send (images stay HELD in pacs.db, MPPS events stay
 * in worklist.db's outbox).  Read after config_load(), so gateway.env
 * counts.
 */
int config_cloud_images(void);
int config_cloud_events(void);
/* The cloud's actions come in through relaylisten: AZURE_RELAY_NAMESPACE
 * and AZURE_RELAY_HYBRID_CONNECTION (gatewayd's wants_relaylisten). */
int config_cloud_actions(void);
/* The path of one stage's spool: <spool_dir>/<stage>. */
int config_spool_path(const struct config *c, const char *stage,
    char *out, size_t outsz, struct err *e);

#endif
