/* qr_find: C-FIND matching over pacs.db (placeholder until the engine
 * lands: every query is refused, nothing is invented). */
#include "qr.h"

int
qr_find(sqlite3 *db, enum qr_root root, const struct dcm *identifier,
    qr_match_fn fn, void *arg, struct err *e)
{
	(void)db; (void)root; (void)identifier; (void)fn; (void)arg;
	return err_set(e, QR_E_LEVEL, "C-FIND is not implemented yet");
}

int
qr_instances(sqlite3 *db, enum qr_root root, const struct dcm *identifier,
    qr_instance_fn fn, void *arg, struct err *e)
{
	(void)db; (void)root; (void)identifier; (void)fn; (void)arg;
	return err_set(e, QR_E_LEVEL, "retrieval is not implemented yet");
}
