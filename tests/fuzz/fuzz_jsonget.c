/* The JSON reader of `subway doctor` (src/common/jsonget.c). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jsonget.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *paths[] = { "", "a", "a.b", "cluster.nodes", "dns.mode", "loop_guard.enabled" };
	const char *doc = (const char *)data;
	char s[32], arr[4][16];
	bool b;
	uint64_t u;

	jsonget_valid(doc, size);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		jsonget_type(doc, size, paths[i]);
		jsonget_str(doc, size, paths[i], s, sizeof(s));
		jsonget_bool(doc, size, paths[i], &b);
		jsonget_u64(doc, size, paths[i], &u);
		jsonget_strs(doc, size, paths[i], &arr[0][0], sizeof(arr[0]), 4);
	}
	return 0;
}
