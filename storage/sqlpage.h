/* The value format of the sql family's pages: a page with its longest run of zeros cut
 * out. SQLite keeps a b-tree page's header and cell pointers at its start and its cells at
 * its end, with free space (zeroed: secure_delete) between, so a page holding a few small
 * rows shrinks from 4096 bytes to a few dozen, in the commit log and in RocksDB alike.
 *
 *   value := page (exactly KEYS_SQL_PAGE bytes, stored as is)
 *          | head_len u16 LE ‖ tail_len u16 LE ‖ head ‖ tail   (4 + head + tail < 4096;
 *            the page is head, zeros, tail) */
#ifndef DURO_STORAGE_SQLPAGE_H
#define DURO_STORAGE_SQLPAGE_H

#include "keys.h"

#include <stddef.h>
#include <stdint.h>

/* The most bytes an encoded page takes. */
#define SQLPAGE_MAX_VALUE KEYS_SQL_PAGE

/* Encodes a page into out (room for SQLPAGE_MAX_VALUE); returns the value's length. */
size_t sqlpage_encode(const uint8_t page[KEYS_SQL_PAGE], uint8_t *out);
/* Decodes a stored value into page. Returns 0, or -EBADMSG for a value that is not one
 * (wrong length, head and tail longer than a page): values also come from import files. */
int sqlpage_decode(const void *value, size_t len, uint8_t page[KEYS_SQL_PAGE]);

#endif
