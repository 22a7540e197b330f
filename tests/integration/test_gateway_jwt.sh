#!/usr/bin/env bash
# test_gateway_jwt.sh -- JWT authentication at the ingress, with tokens minted by an outside
# library (python3-jwt from Debian) to prove interoperability: HS256, RS256 and ES256 keys from
# files chosen by kid; exp/nbf/iss/aud with leeway; alg=none, algorithm confusion, wrong alg,
# unknown kid and tampered signatures refused; key rotation by SIGHUP; roles from the token
# carried to the planner.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's python3, where python3-jwt lives
if ! "$PY" -c 'import jwt, cryptography' 2>/dev/null; then
    echo "not ok - test_gateway_jwt: python3-jwt missing (make deps installs it)"
    exit 1
fi
K=$(mktemp -d /tmp/phx-jwt.XXXXXX)
head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$K/hs.secret"
head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$K/hs2.secret"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/rsa.key" 2>/dev/null
openssl pkey -in "$K/rsa.key" -pubout -out "$K/rsa.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/ec.key" 2>/dev/null
openssl pkey -in "$K/ec.key" -pubout -out "$K/ec.pub"
keys() { # keys KID:ALG:FILE... -> the keys file
    local out='{"keys":[' sep='' kid alg f field
    for k in "$@"; do
        IFS=: read -r kid alg f <<<"$k"
        field=public_key_file
        [ "$alg" = HS256 ] && field=secret_file
        out="$out$sep{\"kid\":\"$kid\",\"alg\":\"$alg\",\"$field\":\"$K/$f\"}"
        sep=,
    done
    echo "$out]}" >"$K/keys.json"
}
keys hs1:HS256:hs.secret rs1:RS256:rsa.pub es1:ES256:ec.pub
cat >"$K/mint.py" <<'PYEOF'
# mint.py KIND DIR [CLAIM_OVERRIDES_JSON]: print one token (tampered/forged ones built by hand)
import base64, hashlib, hmac, json, sys, time
import jwt
kind, d = sys.argv[1], sys.argv[2]
now = int(time.time())
claims = {"sub": "alice", "tenant": "default", "roles": ["reader"], "iss": "https://idp.test",
          "aud": "phoenix", "iat": now, "exp": now + 300}
for k, v in json.loads(sys.argv[3] if len(sys.argv) > 3 else "{}").items():
    if v is None:
        claims.pop(k, None)
    elif isinstance(v, str) and v.startswith("now"):
        claims[k] = now + int(v[3:] or 0)
    else:
        claims[k] = v
rd = lambda f: open(f"{d}/{f}").read()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def forge(header, key):
    si = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    sig = hmac.new(key, si.encode(), hashlib.sha256).digest() if key is not None else b""
    return si + "." + b64(sig)
if kind == "hs":
    print(jwt.encode(claims, rd("hs.secret"), algorithm="HS256", headers={"kid": "hs1"}))
elif kind == "hs-nokid":
    print(jwt.encode(claims, rd("hs.secret"), algorithm="HS256"))
elif kind == "hs2":
    print(jwt.encode(claims, rd("hs2.secret"), algorithm="HS256", headers={"kid": "hs2"}))
elif kind == "rs":
    print(jwt.encode(claims, rd("rsa.key"), algorithm="RS256", headers={"kid": "rs1"}))
elif kind == "es":
    print(jwt.encode(claims, rd("ec.key"), algorithm="ES256", headers={"kid": "es1"}))
elif kind == "hs384":
    print(jwt.encode(claims, rd("hs.secret"), algorithm="HS384", headers={"kid": "hs1"}))
elif kind == "rs-as-hs-kid":  # an RS256 token naming the HMAC key
    print(jwt.encode(claims, rd("rsa.key"), algorithm="RS256", headers={"kid": "hs1"}))
elif kind == "unknown-kid":
    print(jwt.encode(claims, rd("hs.secret"), algorithm="HS256", headers={"kid": "nope"}))
elif kind == "none":
    print(forge({"alg": "none", "typ": "JWT", "kid": "hs1"}, None).rstrip("."))
elif kind == "none-dot":
    print(forge({"alg": "none", "typ": "JWT"}, None))
elif kind == "confusion":  # HS256 keyed with the RSA public key, the classic confusion attack
    for pem in (rd("rsa.pub").encode(), rd("rsa.pub").strip().encode()):
        print(forge({"alg": "HS256", "typ": "JWT", "kid": "rs1"}, pem))
        break
elif kind == "tampered":  # a valid token whose payload is swapped for a more powerful one
    h, p, s = jwt.encode(claims, rd("hs.secret"), algorithm="HS256", headers={"kid": "hs1"}).split(".")
    claims["roles"] = ["admin"]
    print(h + "." + b64(json.dumps(claims).encode()) + "." + s)
elif kind == "badsig":
    t = jwt.encode(claims, rd("hs.secret"), algorithm="HS256", headers={"kid": "hs1"})
    print(t[:-2] + ("AA" if not t.endswith("AA") else "BB"))
PYEOF
mint() { "$PY" "$K/mint.py" "$1" "$K" "${2:-{\}}"; }

export PHX_STACK_POOLS="planner tools"
# No phx-safety in this stack: safety gates (docs/safety.md) are tested in test_safety_gates.sh.
export PHX_SAFETY_GATES=false
export PHX_JWT_KEYS_FILE=$K/keys.json PHX_JWT_ISSUER=https://idp.test PHX_JWT_AUDIENCE=phoenix
export PHX_JWT_LEEWAY_S=5
stack_up
T=$PHX_VAR/jwt
mkdir -p "$T"
get() { api GET '/v1/jobs?limit=1' '' -H "Authorization: Bearer $1" | cut -d' ' -f1; }

# --- 1. table: token kind | claim overrides | expected status -----------------------------
while IFS='|' read -r name kind mods want; do
    [ -z "$name" ] && continue
    check "jwt: $name" "$want" "$(get "$(mint "$kind" "$mods")")"
done <<'EOF2'
HS256 valid|hs|{}|200
RS256 valid|rs|{}|200
ES256 valid|es|{}|200
aud as an array|rs|{"aud":["other","phoenix"]}|200
expired within leeway|hs|{"exp":"now-2"}|200
expired|hs|{"exp":"now-60"}|401
no exp|hs|{"exp":null}|401
not yet valid|es|{"nbf":"now+60"}|401
nbf within leeway|es|{"nbf":"now+2"}|200
wrong audience|hs|{"aud":"someone-else"}|401
wrong issuer|rs|{"iss":"https://evil.test"}|401
no tenant claim|hs|{"tenant":null}|401
alg none|none|{}|401
alg none, empty signature|none-dot|{}|401
algorithm confusion (HS256 with the RSA public key)|confusion|{}|401
RS256 token naming the HS256 key|rs-as-hs-kid|{}|401
HS384 not accepted|hs384|{}|401
unknown kid|unknown-kid|{}|401
no kid with several keys|hs-nokid|{}|401
tampered payload|tampered|{}|401
bad signature|badsig|{}|401
EOF2
r=$(api GET '/v1/jobs?limit=1' '' -H "Authorization: Bearer $(mint none-dot)")
check_contains "jwt: alg none says why" "algorithm none not accepted" "$r"
r=$(api GET '/v1/jobs?limit=1' '' -H "Authorization: Bearer $(mint confusion)")
check_contains "jwt: confusion says why" "algorithm does not match the key" "$r"
r=$(api GET '/v1/jobs?limit=1' '' -H "Authorization: Bearer $(mint hs '{"exp":"now-60"}')")
check_contains "jwt: expired says why" "token expired" "$r"

# --- 2. roles and tenant from the token, through the planner -------------------------------
jq -cn '{steps: [{id:"a",kind:"tool.calc",input:{expr:"20+22"}}]}' >"$T/calc.json"
jq -cn '{steps: [{id:"x",kind:"exec.run",input:{code:"1"}}]}' >"$T/exec.json"
READER=$(mint hs)
SUBM=$(mint rs '{"sub":"bob","roles":"submitter"}')
check "jwt roles: reader cannot submit" 403 "$(api POST /v1/jobs "$T/calc.json" -H "Authorization: Bearer $READER" | cut -d' ' -f1)"
check "jwt roles: submitter cannot run exec" 403 "$(api POST /v1/jobs "$T/exec.json" -H "Authorization: Bearer $SUBM" | cut -d' ' -f1)"
r=$(api POST /v1/jobs "$T/calc.json" -H "Authorization: Bearer $SUBM")
check "jwt roles: submitter submits" 202 "$(cut -d' ' -f1 <<<"$r")"
id=$(cut -d' ' -f2- <<<"$r" | jq -r .job_id)
check "jwt: the planner runs it with the token's roles" 42 "$(reply "$id" | jq -r .outputs.a.value)"
check "jwt: principal from sub" bob "$(redis hget "phx:job:{$id}" principal)"
OTHER=$(mint es '{"tenant":"other","roles":["admin"]}')
check "jwt: other tenant's token gets 404" 404 "$(api GET "/v1/jobs/$id" '' -H "Authorization: Bearer $OTHER" | cut -d' ' -f1)"

# --- 3. rotation: a new key file, SIGHUP; the dropped key's tokens stop working -------------
OLD=$(mint hs)
NEW=$(mint hs2)
check "rotation: new kid unknown before reload" 401 "$(get "$NEW")"
keys hs1:HS256:hs.secret hs2:HS256:hs2.secret rs1:RS256:rsa.pub
kill -HUP "$(cat "$PHX_VAR/run/ingress.pid")"
sleep 0.5
check "rotation: new key accepted after SIGHUP" 200 "$(get "$NEW")"
check "rotation: old key still accepted while both listed" 200 "$(get "$OLD")"
keys hs2:HS256:hs2.secret rs1:RS256:rsa.pub
kill -HUP "$(cat "$PHX_VAR/run/ingress.pid")"
sleep 0.5
check "rotation: dropped key refused" 401 "$(get "$OLD")"
check "rotation: ES256 key dropped too" 401 "$(get "$(mint es)")"
echo '{"keys": []}' >"$K/keys.json"
kill -HUP "$(cat "$PHX_VAR/run/ingress.pid")"
sleep 0.5
check "rotation: a bad key file keeps the old keys" 200 "$(get "$NEW")"
check_contains "rotation: bad reload logged" "keeping the previous keys" "$(cat "$PHX_VAR/log/ingress.log")"
check "jwt: no key material in the log" 0 "$(grep -c -F "$(cat "$K/hs.secret")" "$PHX_VAR/log/ingress.log")"
rm -rf "$K"
exit "$((T_FAIL > 0))"
