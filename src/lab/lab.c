/* Placeholder until the lab lands. */
#include <stdio.h>
#include "commands.h"

int lab_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "subway lab: not built yet\n");
	return 1;
}
