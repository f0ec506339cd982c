/*
 * fuzz_env: libFuzzer target for the gateway.env parser every program
 * uses (config_env_parse in lib/base/config).  Each setting must have a name of
 * the promised shape and a value without NUL; the parse is run twice and
 * must give the same settings (it keeps no state).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct tally {
	unsigned long long sum;
	size_t values, bad;
};

static int
on_value(const char *key, const char *value, int line, void *arg)
{
	(void)line;
	struct tally *t = arg;
	size_t i;

	if (key[0] == '\0' || (key[0] >= '0' && key[0] <= '9'))
		abort();	/* a name is [A-Z_][A-Z0-9_]* */
	for (i = 0; key[i] != '\0'; i++)
		if (!((key[i] >= 'A' && key[i] <= 'Z') ||
		    (key[i] >= '0' && key[i] <= '9') || key[i] == '_'))
			abort();
	t->values++;
	for (i = 0; value[i] != '\0'; i++)
		t->sum = t->sum * 31 + (unsigned char)value[i];
	t->sum += i;
	return 0;
}

static void
on_bad(int line, const char *why, void *arg)
{
	struct tally *t = arg;

	if (line < 1 || why == NULL || why[0] == '\0')
		abort();	/* every bad line is named and explained */
	t->bad++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tally a = { 0 }, b = { 0 };

	if (config_env_parse((const char *)data, size, on_value, on_bad,
	    &a) != 0 || config_env_parse((const char *)data, size, on_value,
	    on_bad, &b) != 0)
		abort();	/* our callbacks never stop it */
	if (a.sum != b.sum || a.values != b.values || a.bad != b.bad)
		abort();
	return 0;
}
