/* jwt.h -- JSON Web Token verification for phx-ingress (libjwt for the signatures).
 *
 * Keys come from a JSON file (PHX_JWT_KEYS_FILE) naming, per key id, the one algorithm that
 * key may be used with and the file holding the key material:
 *
 *   {"keys": [{"kid": "2026-11", "alg": "HS256", "secret_file": "/run/secrets/jwt-hs"},
 *             {"kid": "rsa-1", "alg": "RS256", "public_key_file": "/etc/phoenix/rsa-1.pem"}]}
 *
 * Several keys can be active at once (rotation: add the new key, move issuers over, drop the
 * old one, SIGHUP). A token is accepted only when its header's `alg` equals the algorithm
 * configured for its `kid` -- never the other way round -- so `alg: none` and algorithm
 * confusion (an RS256 public key used as an HS256 secret) cannot pass. Claims: `exp` (required),
 * `nbf`, `iss`, `aud` checked with a small leeway; `sub` is the principal, `tenant` the
 * tenant, `roles` (array or comma-separated string) the roles. */
#ifndef PHX_INGRESS_JWT_H
#define PHX_INGRESS_JWT_H

#include <stddef.h>
#include <stdint.h>

typedef struct phx_jwt_verifier phx_jwt_verifier;

typedef struct phx_jwt_claims {
    char *tenant, *principal, *roles, *kid;
    int64_t exp;
} phx_jwt_claims;

/* Load keys_file. issuer/audience: required values ("" = not checked). NULL with err. */
phx_jwt_verifier *phx_jwt_verifier_new(const char *keys_file, const char *issuer,
                                       const char *audience, long leeway_s, char *err,
                                       size_t errlen);
/* Re-read the key file (SIGHUP). On failure the old keys stay and err says why. */
int phx_jwt_verifier_reload(phx_jwt_verifier *v, char *err, size_t errlen);
void phx_jwt_verifier_free(phx_jwt_verifier *v);
/* Number of keys loaded. */
int phx_jwt_verifier_nkeys(phx_jwt_verifier *v);

/* Verify token at time now_s. 0 with *c filled (free with phx_jwt_claims_clear); -1 with a
 * short reason in why (safe to show the client: it names no key material). */
int phx_jwt_verify(phx_jwt_verifier *v, const char *token, int64_t now_s, phx_jwt_claims *c,
                   char *why, size_t whylen);
void phx_jwt_claims_clear(phx_jwt_claims *c);

/* Does this bearer credential look like a JWT (three dot-separated parts)? */
int phx_jwt_looks_like(const char *token);

#endif
