#include "server/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <h2o.h>

static void ssl_errstr(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, n, "unknown TLS error");
    else
        ERR_error_string_n(e, buf, n);
    ERR_clear_error();
}

static int add_ext(X509 *crt, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, crt, crt, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(crt, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* Writes through a temp file and rename so a crash never leaves half a PEM behind. */
static int write_pem(const char *path, mode_t mode, int is_key, void *obj, char *err, size_t errsz)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) {
        snprintf(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    int ok = f != NULL && (is_key ? PEM_write_PrivateKey(f, obj, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, obj));
    if (f != NULL) {
        if (fclose(f) != 0)
            ok = 0;
    } else {
        close(fd);
    }
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errsz, "cannot write %s", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

int tls_ensure_self_signed(const char *cert_path, const char *key_path, char *err, size_t errsz)
{
    if (access(cert_path, F_OK) == 0 && access(key_path, F_OK) == 0)
        return 0;
    int rc = -1;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *crt = X509_new();
    unsigned char serial[16];
    if (key == NULL || crt == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
        goto ssl_fail;
    serial[0] &= 0x7f; /* positive */
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt)) == NULL) {
        BN_free(bn);
        goto ssl_fail;
    }
    BN_free(bn);
    X509_set_version(crt, 2);
    X509_gmtime_adj(X509_getm_notBefore(crt), -3600);
    X509_gmtime_adj(X509_getm_notAfter(crt), 825L * 24 * 3600);
    X509_set_pubkey(crt, key);
    X509_NAME *name = X509_get_subject_name(crt);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"switchboard", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(crt, name);
    if (add_ext(crt, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") != 0 ||
        add_ext(crt, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(crt, NID_ext_key_usage, "serverAuth") != 0 || X509_sign(crt, key, EVP_sha256()) == 0)
        goto ssl_fail;
    if (write_pem(key_path, 0600, 1, key, err, errsz) != 0 || write_pem(cert_path, 0644, 0, crt, err, errsz) != 0)
        goto out;
    rc = 1;
    goto out;
ssl_fail:
    ssl_errstr(err, errsz);
out:
    X509_free(crt);
    EVP_PKEY_free(key);
    return rc;
}

SSL_CTX *tls_server_ctx(const config_t *cfg, char *err, size_t errsz)
{
    char gen_cert[4096], gen_key[4096], why[256];
    const char *cert = cfg->tls_cert_file, *key = cfg->tls_key_file;
    if (cert == NULL) {
        snprintf(gen_cert, sizeof(gen_cert), "%s/tls-cert.pem", cfg->data_dir);
        snprintf(gen_key, sizeof(gen_key), "%s/tls-key.pem", cfg->data_dir);
        if (tls_ensure_self_signed(gen_cert, gen_key, why, sizeof(why)) < 0) {
            snprintf(err, errsz, "TLS_CERT_FILE unset and no self-signed certificate: %s", why);
            return NULL;
        }
        cert = gen_cert;
        key = gen_key;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_errstr(why, sizeof(why));
        snprintf(err, errsz, "TLS: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_errstr(why, sizeof(why));
        snprintf(err, errsz, "TLS_CERT_FILE: cannot load %s: %s", cert, why);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ssl_errstr(why, sizeof(why));
        snprintf(err, errsz, "TLS_KEY_FILE: cannot load %s or it does not match the certificate: %s", key, why);
        goto fail;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_client_ctx(const char *extra_ca, char *err, size_t errsz)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ssl_errstr(why, sizeof(why));
        snprintf(err, errsz, "TLS client context: %s", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (extra_ca != NULL && SSL_CTX_load_verify_locations(ctx, extra_ca, NULL) != 1) {
        ssl_errstr(why, sizeof(why));
        snprintf(err, errsz, "AI_CA_FILE: cannot load %s: %s", extra_ca, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
