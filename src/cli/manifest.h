/* deploy/subway.yaml as the build found it (make compiles it in:
 * build/gen/manifest.c), so that `subway install` needs no repository. */
#pragma once
#include <stddef.h>

extern const char install_manifest[];
extern const size_t install_manifest_len;
