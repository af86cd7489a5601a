/* libFuzzer target: untrusted bytes as a durod config file. */
#include "config.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct duro_config cfg;
	char err[512];
	config_defaults(&cfg);
	config_load_buffer(&cfg, (const char *)data, size, err, sizeof(err));
	return 0;
}
