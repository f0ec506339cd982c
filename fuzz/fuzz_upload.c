/*
 * fuzz_upload: libFuzzer target for what lib/cloud/api reads from a Manage
 * API reply besides its status: the Retry-After header value (delta
 * seconds or an HTTP-date, through curl_getdate) and the wait it leads
 * to.  The input is the header value as libcurl hands it over (with its
 * CRLF, not NUL-terminated: a copy is).  The parsed value must be -1 or
 * a wait, and the backoff built on it must honour it and never be
 * negative.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long long nows[] = { 0, 1764633600LL, 4102444800LL };
	long retry;
	long long ms;
	char *value;
	size_t i;

	if ((value = malloc(size + 1)) == NULL)
		return 0;
	memcpy(value, data, size);
	value[size] = '\0';
	for (i = 0; i < sizeof nows / sizeof nows[0]; i++) {
		retry = api_parse_retry_after(value, nows[i]);
		if (retry < -1)
			abort();
		ms = api_backoff_ms(size > 0 ? data[0] % 40 : 0, 300, retry,
		    size > 1 ? data[1] : 0);
		if (ms < 0 || (retry >= 0 && retry < 86400 &&
		    ms < retry * 1000LL))
			abort();
	}
	(void)api_outcome(size > 2 ? (long)data[2] * 3 : 0);
	free(value);
	return 0;
}
