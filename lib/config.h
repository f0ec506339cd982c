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
 * (4246).  config_load() only reads the
 * environment: it creates nothing.  Programs override single fields from
 * their options after loading.
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

/* A whole decimal number in [lo, hi] (option values): 0, or -1. */
int config_parse_int(const char *s, int lo, int hi, int *out);

/*
 * A whole-number setting from the environment: def when name is unset or
 * empty; -1 with e naming the variable when it is not in [lo, hi].
 */
int config_env_long(const char *name, long lo, long hi, long def, long *out,
    struct err *e);

/* The path of one stage's spool: <spool_dir>/<stage>. */
int config_spool_path(const struct config *c, const char *stage,
    char *out, size_t outsz, struct err *e);

#endif
