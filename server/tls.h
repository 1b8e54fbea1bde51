/*
 * tls: the server's TLS context. Uses TLS_CERT_FILE/TLS_KEY_FILE when set; otherwise a
 * self-signed certificate (localhost, 127.0.0.1, ::1) generated once into the data folder
 * and reused on later starts. ALPN offers h2 and http/1.1.
 * The caller owns the returned SSL_CTX (SSL_CTX_free); it is shared read-only by workers.
 */
#ifndef SB_TLS_H
#define SB_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "server/config.h"

SSL_CTX *tls_server_ctx(const config_t *cfg, char *err, size_t errsz);

/* Client context for outgoing TLS (the AI and ARI WebSockets): peer verification on, the system
 * CA store, and extra_ca's certificates beside it when not NULL (AI_CA_FILE, for tests).
 * One per process, shared by the workers' client connections; the caller frees it after they are gone. */
SSL_CTX *tls_client_ctx(const char *extra_ca, char *err, size_t errsz);

/* Writes a new self-signed certificate and key (mode 0600) unless both files exist. 1: created, 0: kept, -1: error. */
int tls_ensure_self_signed(const char *cert_path, const char *key_path, char *err, size_t errsz);

#endif
