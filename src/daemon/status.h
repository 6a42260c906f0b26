/* `subway status`: the daemon's state as text, or as one JSON document
 * whose keys docs/cli.md documents (keep them stable). */
#pragma once
#include <stdio.h>

struct daemon;

void status_write_json(struct daemon *d, FILE *fp);
void status_write_text(struct daemon *d, FILE *fp);
