/* jwt.c -- JWT verification (see jwt.h).
 *
 * libjwt 1.10 picks the verification algorithm from the token's own header and accepts
 * `alg: none` without looking at the key, so it cannot be trusted to choose. The header is
 * therefore decoded here first; the key is chosen by `kid`, the header's `alg` must equal the
 * key's configured algorithm, and only then is libjwt asked to check the signature with that
 * key -- and its parsed `alg` is compared once more. Claims are checked here too, because
 * libjwt 1.10 has no claim validation of its own. */
#include "jwt.h"
#include "config.h"
#include "msg.h"
#include "util.h"

#include <jansson.h>
#include <jwt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct phx_jwt_key {
    char kid[128];
    jwt_alg_t alg;
    unsigned char *material;
    size_t len;
} phx_jwt_key;

typedef struct phx_jwt_keyset {
    phx_jwt_key *keys;
    int n;
} phx_jwt_keyset;

struct phx_jwt_verifier {
    char *file, *issuer, *audience;
    long leeway_s;
    pthread_rwlock_t lock; /* guards set: reload swaps it while requests verify */
    phx_jwt_keyset set;
};

static void phx_jwt_keyset_free(phx_jwt_keyset *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->keys[i].material)
            memset(s->keys[i].material, 0, s->keys[i].len);
        free(s->keys[i].material);
    }
    free(s->keys);
    s->keys = NULL;
    s->n = 0;
}

/* Only asymmetric algorithms and HS256; the rest are refused at load so that a key file
 * cannot widen what tokens may use. */
static jwt_alg_t phx_jwt_alg(const char *name)
{
    if (!name)
        return JWT_ALG_INVAL;
    if (strcmp(name, "HS256") == 0)
        return JWT_ALG_HS256;
    if (strcmp(name, "RS256") == 0)
        return JWT_ALG_RS256;
    if (strcmp(name, "ES256") == 0)
        return JWT_ALG_ES256;
    return JWT_ALG_INVAL;
}

static int phx_jwt_load_key(json_t *k, phx_jwt_key *out, char *err, size_t errlen)
{
    const char *kid = json_string_value(json_object_get(k, "kid"));
    const char *alg = json_string_value(json_object_get(k, "alg"));
    const char *sf = json_string_value(json_object_get(k, "secret_file"));
    const char *pf = json_string_value(json_object_get(k, "public_key_file"));
    if (!kid || !*kid || strlen(kid) >= sizeof(out->kid)) {
        snprintf(err, errlen, "a key has no valid kid");
        return -1;
    }
    snprintf(out->kid, sizeof(out->kid), "%s", kid);
    out->alg = phx_jwt_alg(alg);
    if (out->alg == JWT_ALG_INVAL) {
        snprintf(err, errlen, "key %s: alg must be HS256, RS256 or ES256", kid);
        return -1;
    }
    int hmac = out->alg == JWT_ALG_HS256;
    const char *f = hmac ? sf : pf;
    if (!f || (hmac ? pf : sf) != NULL) {
        snprintf(err, errlen, "key %s: %s needs exactly %s", kid, alg,
                 hmac ? "secret_file" : "public_key_file");
        return -1;
    }
    char e2[256];
    char *m = phx_config_read_secret(f, e2, sizeof(e2));
    if (!m) {
        snprintf(err, errlen, "key %s: %s", kid, e2);
        return -1;
    }
    out->len = strlen(m);
    out->material = (unsigned char *)m;
    if (hmac && out->len < 32) {
        snprintf(err, errlen, "key %s: an HS256 secret needs at least 32 bytes", kid);
        return -1;
    }
    if (!hmac && !strstr(m, "-----BEGIN PUBLIC KEY-----")) {
        /* A private key or certificate here is a deployment mistake worth stopping for. */
        snprintf(err, errlen, "key %s: %s is not a PEM public key", kid, f);
        return -1;
    }
    return 0;
}

static int phx_jwt_load(const char *file, phx_jwt_keyset *set, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    json_t *keys = json_object_get(doc, "keys");
    memset(set, 0, sizeof(*set));
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        snprintf(err, errlen, "PHX_JWT_KEYS_FILE=%s: %s", file,
                 doc ? "needs a non-empty \"keys\" array" : je.text);
        json_decref(doc);
        return -1;
    }
    set->keys = phx_xcalloc(json_array_size(keys), sizeof(*set->keys));
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (phx_jwt_load_key(k, &set->keys[set->n++], err, errlen) < 0)
            goto err;
        for (int j = 0; j + 1 < set->n; j++) {
            if (strcmp(set->keys[j].kid, set->keys[set->n - 1].kid) == 0) {
                snprintf(err, errlen, "kid %s appears twice", set->keys[j].kid);
                goto err;
            }
        }
    }
    json_decref(doc);
    return 0;
err:
    json_decref(doc);
    phx_jwt_keyset_free(set);
    return -1;
}

phx_jwt_verifier *phx_jwt_verifier_new(const char *keys_file, const char *issuer,
                                       const char *audience, long leeway_s, char *err,
                                       size_t errlen)
{
    phx_jwt_verifier *v = phx_xcalloc(1, sizeof(*v));
    v->file = phx_xstrdup(keys_file);
    v->issuer = phx_xstrdup(issuer ? issuer : "");
    v->audience = phx_xstrdup(audience ? audience : "");
    v->leeway_s = leeway_s;
    pthread_rwlock_init(&v->lock, NULL);
    if (phx_jwt_load(keys_file, &v->set, err, errlen) < 0) {
        phx_jwt_verifier_free(v);
        return NULL;
    }
    return v;
}

int phx_jwt_verifier_reload(phx_jwt_verifier *v, char *err, size_t errlen)
{
    phx_jwt_keyset s;
    if (phx_jwt_load(v->file, &s, err, errlen) < 0)
        return -1;
    pthread_rwlock_wrlock(&v->lock);
    phx_jwt_keyset old = v->set;
    v->set = s;
    pthread_rwlock_unlock(&v->lock);
    phx_jwt_keyset_free(&old);
    return 0;
}

int phx_jwt_verifier_nkeys(phx_jwt_verifier *v)
{
    pthread_rwlock_rdlock(&v->lock);
    int n = v->set.n;
    pthread_rwlock_unlock(&v->lock);
    return n;
}

void phx_jwt_verifier_free(phx_jwt_verifier *v)
{
    if (!v)
        return;
    phx_jwt_keyset_free(&v->set);
    pthread_rwlock_destroy(&v->lock);
    free(v->file);
    free(v->issuer);
    free(v->audience);
    free(v);
}

int phx_jwt_looks_like(const char *t)
{
    const char *d1 = strchr(t, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    return d1 && d2 && !strchr(d2 + 1, '.');
}

/* The token's header as JSON (base64url, unpadded). */
static json_t *phx_jwt_header(const char *token)
{
    const char *dot = strchr(token, '.');
    size_t n = dot ? (size_t)(dot - token) : 0;
    if (n == 0 || n > 2048)
        return NULL;
    char *b = phx_xmalloc(n + 4);
    for (size_t i = 0; i < n; i++)
        b[i] = token[i] == '-' ? '+' : token[i] == '_' ? '/' : token[i];
    while (n % 4)
        b[n++] = '=';
    b[n] = '\0';
    size_t len;
    unsigned char *raw = phx_base64_decode(b, &len);
    free(b);
    json_t *h = raw ? json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(raw);
    if (h && !json_is_object(h)) {
        json_decref(h);
        h = NULL;
    }
    return h;
}

static const phx_jwt_key *phx_jwt_pick(const phx_jwt_keyset *s, const char *kid)
{
    if (!kid)
        return s->n == 1 ? &s->keys[0] : NULL; /* kid may be omitted only with one key */
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->keys[i].kid, kid) == 0)
            return &s->keys[i];
    return NULL;
}

/* aud may be a string or an array of strings. */
static int phx_jwt_aud_ok(jwt_t *j, const char *want)
{
    const char *a = jwt_get_grant(j, "aud");
    if (a)
        return strcmp(a, want) == 0;
    char *arr = jwt_get_grants_json(j, "aud");
    json_t *v = arr ? json_loads(arr, JSON_DECODE_ANY, NULL) : NULL;
    free(arr);
    int ok = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) ok |= json_is_string(e) && strcmp(json_string_value(e), want) == 0;
    json_decref(v);
    return ok;
}

/* A numeric claim; -1 when absent or not a number. */
static int64_t phx_jwt_num(jwt_t *j, const char *name)
{
    char *s = jwt_get_grants_json(j, name);
    json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    free(s);
    int64_t n = json_is_number(v) ? (int64_t)json_number_value(v) : -1;
    json_decref(v);
    return n;
}

static char *phx_jwt_roles(jwt_t *j)
{
    const char *s = jwt_get_grant(j, "roles");
    if (s)
        return strdup(s);
    char *arr = jwt_get_grants_json(j, "roles");
    json_t *v = arr ? json_loads(arr, JSON_DECODE_ANY, NULL) : NULL;
    free(arr);
    size_t i, len = 0;
    json_t *e;
    char *out = phx_xcalloc(1, 1);
    json_array_foreach(v, i, e)
    {
        const char *r = json_string_value(e);
        if (!r || strchr(r, ','))
            continue;
        out = phx_xrealloc(out, len + strlen(r) + 2);
        len += (size_t)sprintf(out + len, "%s%s", len ? "," : "", r);
    }
    json_decref(v);
    return out;
}

/* Claims after the signature checked out. */
static int phx_jwt_claims_check(phx_jwt_verifier *v, jwt_t *j, int64_t now, phx_jwt_claims *c,
                                char *why, size_t whylen)
{
    int64_t exp = phx_jwt_num(j, "exp"), nbf = phx_jwt_num(j, "nbf");
    const char *iss = jwt_get_grant(j, "iss"), *sub = jwt_get_grant(j, "sub"),
               *tenant = jwt_get_grant(j, "tenant");
    if (exp < 0) {
        snprintf(why, whylen, "token has no exp");
        return -1;
    }
    if (now > exp + v->leeway_s) {
        snprintf(why, whylen, "token expired");
        return -1;
    }
    if (nbf >= 0 && now + v->leeway_s < nbf) {
        snprintf(why, whylen, "token not yet valid");
        return -1;
    }
    if (*v->issuer && (!iss || strcmp(iss, v->issuer) != 0)) {
        snprintf(why, whylen, "wrong issuer");
        return -1;
    }
    if (*v->audience && !phx_jwt_aud_ok(j, v->audience)) {
        snprintf(why, whylen, "wrong audience");
        return -1;
    }
    if (!sub || !phx_id_valid(sub) || !tenant || !phx_id_valid(tenant)) {
        snprintf(why, whylen, "token needs sub and tenant claims ([A-Za-z0-9._:-]{1,128})");
        return -1;
    }
    c->principal = phx_xstrdup(sub);
    c->tenant = phx_xstrdup(tenant);
    c->roles = phx_jwt_roles(j);
    c->exp = exp;
    return 0;
}

int phx_jwt_verify(phx_jwt_verifier *v, const char *token, int64_t now_s, phx_jwt_claims *c,
                   char *why, size_t whylen)
{
    memset(c, 0, sizeof(*c));
    json_t *h = phx_jwt_header(token);
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *kid = json_string_value(json_object_get(h, "kid"));
    jwt_t *j = NULL;
    int rc = -1;
    if (!alg) {
        snprintf(why, whylen, "malformed token");
        goto out;
    }
    jwt_alg_t want = phx_jwt_alg(alg);
    if (want == JWT_ALG_INVAL) {
        snprintf(why, whylen, "algorithm %.16s not accepted", alg);
        goto out;
    }
    pthread_rwlock_rdlock(&v->lock);
    const phx_jwt_key *k = phx_jwt_pick(&v->set, kid);
    if (!k) {
        snprintf(why, whylen, kid ? "unknown kid" : "token needs a kid");
    } else if (k->alg != want) {
        snprintf(why, whylen, "algorithm does not match the key"); /* alg confusion */
    } else if (jwt_decode(&j, token, k->material, (int)k->len) != 0 || !j) {
        snprintf(why, whylen, "bad signature");
        j = NULL;
    } else if (jwt_get_alg(j) != k->alg) {
        snprintf(why, whylen, "algorithm does not match the key");
    } else {
        c->kid = phx_xstrdup(k->kid);
        rc = 0;
    }
    pthread_rwlock_unlock(&v->lock);
    if (rc == 0 && phx_jwt_claims_check(v, j, now_s, c, why, whylen) < 0) {
        phx_jwt_claims_clear(c);
        rc = -1;
    }
out:
    if (j)
        jwt_free(j);
    json_decref(h);
    return rc;
}

void phx_jwt_claims_clear(phx_jwt_claims *c)
{
    free(c->tenant);
    free(c->principal);
    free(c->roles);
    free(c->kid);
    memset(c, 0, sizeof(*c));
}
