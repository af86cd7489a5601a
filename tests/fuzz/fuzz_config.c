/* libFuzzer target: untrusted bytes as a durod config file, with the round trip as an
 * oracle (the effective config of an accepted file parses back to itself), and as the
 * text of a --set flag. */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *shown(const struct duro_config *cfg)
{
	json_t *j = config_to_json(cfg);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct duro_config cfg, again;
	static struct config_flags flags;
	char err[512], text[4096];
	config_defaults(&cfg);
	if (config_load_buffer(&cfg, (const char *)data, size, err, sizeof(err)) == 0) {
		char *a = shown(&cfg), *b = NULL;
		config_defaults(&again);
		if (a && config_load_buffer(&again, a, strlen(a), err, sizeof(err)) < 0)
			abort(); /* what durod shows must be a config */
		b = a ? shown(&again) : NULL;
		if (a && b && strcmp(a, b))
			abort(); /* and give itself back */
		free(a);
		free(b);
	}
	/* The same bytes as --set PATH=VALUE. */
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	memcpy(text, data, n);
	text[n] = 0;
	memset(&flags, 0, sizeof(flags));
	config_defaults(&cfg);
	if (config_flags_add_set(&flags, text, err, sizeof(err)) == 0)
		config_flags_apply(&cfg, &flags, err, sizeof(err));
	return 0;
}
