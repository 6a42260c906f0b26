/* deploy/subway.yaml and deploy/subway-agent.yaml as the build found them
 * (make compiles them in: build/gen/manifest.c), so that `subway install`
 * needs no repository. */
#pragma once
#include <stddef.h>

extern const char install_manifest[];
extern const size_t install_manifest_len;
extern const char install_agent_manifest[];
extern const size_t install_agent_manifest_len;
