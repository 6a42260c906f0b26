/* The JSON tree of `subway inject` and the lab's workloads
 * (src/common/jval.c): what parses writes back, compact and indented, to
 * text that parses to an equal tree (the compact text byte for byte the
 * same), and the parser never accepts what jsonget's validator refuses.
 * An input that is an array is also applied as a JSON patch to a small
 * workload: the result is the document or the untouched original. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonget.h"
#include "common/jval.h"

#include "fuzz.h"

static const char workload[] =
	"{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"env\":[{\"name\":\"A\",\"value\":\"1\"}]}]}}}}";

static void patch(const struct jval *p)
{
	struct jval *doc = jval_parse(workload, sizeof(workload) - 1, NULL, 0), *orig = jval_dup(doc);
	char err[128];

	CHECK(doc && orig);
	if (jval_patch(&doc, p, err, sizeof(err)) < 0)
		CHECK(jval_equal(doc, orig));
	else
		free(jval_encode(doc, 0, NULL));
	jval_free(doc);
	jval_free(orig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[128];
	struct jval *v = jval_parse((const char *)data, size, err, sizeof(err)), *again;
	size_t n, m;
	char *compact, *pretty, *twice;

	if (!v)
		return 0;
	CHECK(jsonget_valid((const char *)data, size) == 0);
	compact = jval_encode(v, 0, &n);
	pretty = jval_encode(v, 2, &m);
	CHECK(compact && pretty && strlen(compact) == n && strlen(pretty) == m);
	again = jval_parse(pretty, m, err, sizeof(err));
	CHECK(again && jval_equal(v, again));
	jval_free(again);
	again = jval_parse(compact, n, err, sizeof(err));
	CHECK(again && jval_equal(v, again));
	twice = jval_encode(again, 0, NULL);
	CHECK(twice && !strcmp(twice, compact));
	if (v->type == JV_ARRAY)
		patch(v);
	free(twice);
	jval_free(again);
	free(compact);
	free(pretty);
	jval_free(v);
	return 0;
}
