/* sha256.c - thin wrapper over OpenSSL's EVP digest API. */
#include "sha256.h"

#include <openssl/evp.h>

struct qs_sha256 { EVP_MD_CTX *ctx; };

qs_sha256 *qs_sha256_new(void)
{
	qs_sha256 *h = OPENSSL_zalloc(sizeof(*h));
	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
		qs_sha256_free(h);
		return NULL;
	}
	return h;
}

void qs_sha256_update(qs_sha256 *h, const void *p, size_t n)
{
	EVP_DigestUpdate(h->ctx, p, n);
}

void qs_sha256_final(qs_sha256 *h, uint8_t out[32])
{
	unsigned int len = 32;
	EVP_DigestFinal_ex(h->ctx, out, &len);
	EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
}

void qs_sha256_free(qs_sha256 *h)
{
	if (h) {
		EVP_MD_CTX_free(h->ctx);
		OPENSSL_free(h);
	}
}
