/* libFuzzer target for token files (auth_token_file_parse): never crash,
 * and on success the fields hold what the format allows; on failure the
 * error is one line and the token is wiped. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/auth.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct auth_token zero;
	struct token_file tf;
	char err[128];
	int r;

	memset(err, 'x', sizeof(err));
	r = auth_token_file_parse((const char *)data, size, &tf, err, sizeof(err));
	if (r == 0) {
		if (tf.token.len < 16 || tf.token.len > 64 || size > AUTH_TOKEN_FILE_MAX)
			abort();
		if (tf.has_manager && tf.manager_port == 0)
			abort();
		auth_token_wipe(&tf.token);
		return 0;
	}
	if (r != -EINVAL || !memchr(err, 0, sizeof(err)) || strchr(err, '\n') || err[0] == 0)
		abort();
	if (memcmp(&tf.token, &zero, sizeof(zero)))
		abort();
	return 0;
}
