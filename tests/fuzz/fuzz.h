/* Shared by the libFuzzer targets: the entry point, and CHECK, which
 * traps (a crash libFuzzer reports with the input) when a property fails. */
#pragma once
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                          \
	do {                              \
		if (!(x))                 \
			__builtin_trap(); \
	} while (0)
