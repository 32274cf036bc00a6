/* sha256.h - SHA-256 through OpenSSL EVP (file hashes of both views). */
#ifndef QS_SHA256_H
#define QS_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct qs_sha256 qs_sha256;
qs_sha256 *qs_sha256_new(void);            /* NULL on failure */
void qs_sha256_update(qs_sha256 *h, const void *p, size_t n);
void qs_sha256_final(qs_sha256 *h, uint8_t out[32]);   /* and resets */
void qs_sha256_free(qs_sha256 *h);
#endif
