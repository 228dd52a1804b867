/* libFuzzer's driver entry point (compiler-rt), present when the fuzz target
 * is built with -sanitize=fuzzer. Declared here only; nothing is linked. */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
