/* schema.c -- JSON Schema (draft 2020-12) validator (see schema.h).
 *
 * A schema is compiled into a graph of nodes, one per schema object or boolean: keywords are
 * checked and parsed into fields, patterns compiled, and every $ref / $dynamicRef linked to its
 * target node. Validation then only reads that graph, which is what makes a compiled schema safe
 * to share between threads. All nodes live in a registry that also indexes the schema resources
 * (documents and subschemas with "$id") and their anchors; a schema set is one registry holding
 * several documents, so refs between members resolve like refs inside one document.
 *
 * unevaluatedProperties/Items need to know what sibling keywords (through allOf, $ref, if, ...)
 * have evaluated. Each evaluation of a node for an object or array instance can carry a bit
 * set over the instance's members ("annotations"); a node merges its set into its caller's only
 * when it succeeds, which is exactly the rule that annotations of failed subschemas are dropped.
 *
 * Sections: buffers, URIs, registry, regex translation, formats, compilation, linking,
 * evaluation, public API. */
#include "schema.h"
#include "util.h"

#include <locale.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHX_SCHEMA_DIALECT     "https://json-schema.org/draft/2020-12/schema"
#define PHX_SCHEMA_META_PREFIX "https://json-schema.org/draft/2020-12/"
#define PHX_SCHEMA_SET_BASE    "phx-schema:/set/"
#define PHX_SCHEMA_ANON_BASE   "phx-schema:/doc"

/* --- buffers ------------------------------------------------------------------------------ */

/* Growable string; on allocation failure it sets oom and ignores further writes, so callers
 * check once at the end instead of after every append. */
struct phx_schema_buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void phx_schema_buf_add(struct phx_schema_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void phx_schema_buf_str(struct phx_schema_buf *b, const char *s)
{
    phx_schema_buf_add(b, s, strlen(s));
}

static void phx_schema_buf_chr(struct phx_schema_buf *b, char c)
{
    phx_schema_buf_add(b, &c, 1);
}

static void phx_schema_buf_utf8(struct phx_schema_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    phx_schema_buf_add(b, u, n);
}

/* Take the buffer's string (NULL after an allocation failure); the buffer is left empty. */
static char *phx_schema_buf_take(struct phx_schema_buf *b)
{
    char *p = b->oom ? NULL : b->p;
    if (b->oom)
        free(b->p);
    else if (!p)
        p = strdup("");
    memset(b, 0, sizeof(*b));
    return p;
}

static void phx_schema_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void phx_schema_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Decode one code point of valid UTF-8 (jansson only holds valid UTF-8 strings). */
static uint32_t phx_schema_utf8_next(const char *s, size_t len, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[*i];
    size_t n = c < 0x80 ? 0 : c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
    if (n)
        c &= 0x3f >> n;
    (*i)++;
    while (n-- > 0 && *i < len)
        c = (c << 6) | (u[(*i)++] & 0x3f);
    return c;
}

static int phx_schema_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int phx_schema_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int phx_schema_is_xdigit(char c)
{
    return phx_schema_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int phx_schema_xval(char c)
{
    return phx_schema_is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* --- URIs (RFC 3986) ---------------------------------------------------------------------- */

struct phx_schema_uri {
    const char *scheme, *auth, *path, *query, *frag;
    size_t scheme_len, auth_len, path_len, query_len, frag_len;
    int has_scheme, has_auth, has_query, has_frag;
};

static void phx_schema_uri_split(const char *s, struct phx_schema_uri *u)
{
    memset(u, 0, sizeof(*u));
    size_t i = 0;
    if (phx_schema_is_alpha(s[0])) {
        i = 1;
        while (phx_schema_is_alpha(s[i]) || phx_schema_is_digit(s[i]) || s[i] == '+' ||
               s[i] == '-' || s[i] == '.')
            i++;
        if (s[i] == ':') {
            u->has_scheme = 1;
            u->scheme = s;
            u->scheme_len = i;
            s += i + 1;
        }
    }
    if (s[0] == '/' && s[1] == '/') {
        u->has_auth = 1;
        u->auth = s + 2;
        u->auth_len = strcspn(u->auth, "/?#");
        s = u->auth + u->auth_len;
    }
    u->path = s;
    u->path_len = strcspn(s, "?#");
    s += u->path_len;
    if (*s == '?') {
        u->has_query = 1;
        u->query = s + 1;
        u->query_len = strcspn(u->query, "#");
        s = u->query + u->query_len;
    }
    if (*s == '#') {
        u->has_frag = 1;
        u->frag = s + 1;
        u->frag_len = strlen(u->frag);
    }
}

/* RFC 3986 5.2.4. Works on a private copy because some steps rewrite the input in place. */
static void phx_schema_remove_dots(struct phx_schema_buf *out, const char *path, size_t len)
{
    char *in = strndup(path, len);
    if (!in) {
        out->oom = 1;
        return;
    }
    size_t start = out->len; /* out may already hold scheme and authority */
    char *p = in;
    while (*p) {
        if (strncmp(p, "../", 3) == 0) {
            p += 3;
        } else if (strncmp(p, "./", 2) == 0) {
            p += 2;
        } else if (strncmp(p, "/./", 3) == 0) {
            p += 2;
        } else if (strcmp(p, "/.") == 0) {
            p[1] = '/';
            p += 1;
        } else if (strncmp(p, "/../", 4) == 0 || strcmp(p, "/..") == 0) {
            if (p[3] == '\0') {
                p[2] = '/';
                p += 2;
            } else {
                p += 3;
            }
            while (out->len > start && out->p[out->len - 1] != '/')
                out->len--;
            if (out->len > start)
                out->len--;
            if (out->p)
                out->p[out->len] = '\0';
        } else if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
            break;
        } else {
            size_t n = strcspn(p + 1, "/") + 1;
            if (*p != '/')
                n = strcspn(p, "/");
            phx_schema_buf_add(out, p, n);
            p += n;
        }
    }
    free(in);
}

/* Resolve ref against an absolute base (RFC 3986 5.2.2); a new string or NULL (no memory). */
static char *phx_schema_uri_resolve(const char *base, const char *ref)
{
    struct phx_schema_uri b, r;
    struct phx_schema_buf out = {0};
    phx_schema_uri_split(base, &b);
    phx_schema_uri_split(ref, &r);

    const struct phx_schema_uri *s = r.has_scheme ? &r : &b;
    phx_schema_buf_add(&out, s->scheme, s->scheme_len);
    phx_schema_buf_chr(&out, ':');
    if (r.has_scheme || r.has_auth) {
        const struct phx_schema_uri *a = &r;
        if (a->has_auth) {
            phx_schema_buf_str(&out, "//");
            phx_schema_buf_add(&out, a->auth, a->auth_len);
        }
        phx_schema_remove_dots(&out, a->path, a->path_len);
        if (a->has_query) {
            phx_schema_buf_chr(&out, '?');
            phx_schema_buf_add(&out, a->query, a->query_len);
        }
    } else {
        if (b.has_auth) {
            phx_schema_buf_str(&out, "//");
            phx_schema_buf_add(&out, b.auth, b.auth_len);
        }
        const struct phx_schema_uri *q = &r;
        if (r.path_len == 0) {
            phx_schema_buf_add(&out, b.path, b.path_len);
            if (!r.has_query)
                q = &b;
        } else if (r.path[0] == '/') {
            phx_schema_remove_dots(&out, r.path, r.path_len);
        } else {
            /* merge: the base path up to its last '/', then the reference's path */
            struct phx_schema_buf m = {0};
            if (b.has_auth && b.path_len == 0) {
                phx_schema_buf_chr(&m, '/');
            } else {
                size_t keep = b.path_len;
                while (keep > 0 && b.path[keep - 1] != '/')
                    keep--;
                phx_schema_buf_add(&m, b.path, keep);
            }
            phx_schema_buf_add(&m, r.path, r.path_len);
            if (m.oom)
                out.oom = 1;
            else
                phx_schema_remove_dots(&out, m.p, m.len);
            free(m.p);
        }
        if (q->has_query) {
            phx_schema_buf_chr(&out, '?');
            phx_schema_buf_add(&out, q->query, q->query_len);
        }
    }
    if (r.has_frag) {
        phx_schema_buf_chr(&out, '#');
        phx_schema_buf_add(&out, r.frag, r.frag_len);
    }
    return phx_schema_buf_take(&out);
}

/* --- registry ----------------------------------------------------------------------------- */

enum {
    PHX_SCHEMA_T_NULL = 1 << 0,
    PHX_SCHEMA_T_BOOLEAN = 1 << 1,
    PHX_SCHEMA_T_OBJECT = 1 << 2,
    PHX_SCHEMA_T_ARRAY = 1 << 3,
    PHX_SCHEMA_T_NUMBER = 1 << 4,
    PHX_SCHEMA_T_STRING = 1 << 5,
    PHX_SCHEMA_T_INTEGER = 1 << 6,
};

static const char *const phx_schema_type_names[] = {"null",   "boolean", "object", "array",
                                                    "number", "string",  "integer"};

enum phx_schema_format {
    PHX_SCHEMA_F_NONE,
    PHX_SCHEMA_F_DATE_TIME,
    PHX_SCHEMA_F_EMAIL,
    PHX_SCHEMA_F_URI,
    PHX_SCHEMA_F_UUID,
};

struct phx_schema_pat {
    regex_t re;
    const char *src;
    struct phx_schema_node *node;
};

struct phx_schema_node {
    size_t id; /* index in the registry, so a failed set add can tell its own nodes apart */
    json_t *json;
    int boolean; /* -1 for an object schema, else the value of a boolean schema */
    struct phx_schema_res *res;
    int has_unevaluated;

    char *ref_uri;
    struct phx_schema_node *ref;
    char *dynref_uri;
    char *ref_where; /* schema location of the node, for link-time messages */
    struct phx_schema_node *dynref;
    const char *dynref_name; /* set when dynref's static target is a $dynamicAnchor */

    unsigned types;
    json_t *const_val, *enum_val;
    enum phx_schema_format format;

    json_t *minimum, *maximum, *xminimum, *xmaximum, *multiple_of;

    long long min_length, max_length; /* -1 when absent, as for every count below */
    regex_t *pattern; /* NULL for no pattern, or one the fast matcher answers alone */
    const char *pattern_src;
    struct phx_schema_fast *fast; /* the pattern without regexec, when it is simple enough */

    long long min_items, max_items, min_contains, max_contains;
    int unique_items;
    struct phx_schema_node **prefix;
    size_t n_prefix;
    struct phx_schema_node *items, *contains, *unevaluated_items;

    long long min_props, max_props;
    json_t *properties; /* name -> subschema JSON; its nodes are found through the registry */
    struct phx_schema_pat *pats;
    size_t n_pats;
    struct phx_schema_node *additional, *property_names, *unevaluated_props;
    json_t *required, *dep_required, *dep_schemas;

    struct phx_schema_node **all_of, **any_of, **one_of;
    size_t n_all_of, n_any_of, n_one_of;
    struct phx_schema_node *not_, *if_, *then_, *else_;
};

struct phx_schema_anchor {
    char *name;
    struct phx_schema_node *node;
    int dynamic;
};

/* A schema resource: a document or a subschema with "$id". */
struct phx_schema_res {
    char *uri; /* absolute, without fragment */
    struct phx_schema_node *root;
    struct phx_schema_anchor *anchors;
    size_t n_anchors;
};

struct phx_schema_slot {
    const json_t *key;
    struct phx_schema_node *node;
};

struct phx_schema_reg {
    json_t *docs; /* every compiled document, kept alive for the nodes that point into it */
    struct phx_schema_node **nodes;
    size_t n_nodes, cap_nodes;
    struct phx_schema_res **res;
    size_t n_res, cap_res;
    struct phx_schema_slot *map; /* JSON value -> node, open addressing */
    size_t map_cap, map_used;
    unsigned anon; /* counter for the base URIs of documents without $id */
    locale_t utf8; /* C.UTF-8 for regcomp/regexec, or 0 when the system lacks it */
};

struct phx_schema {
    struct phx_schema_reg *reg;
    struct phx_schema_node *root;
    int owns_reg;
    char *name;
};

struct phx_schema_set {
    struct phx_schema_reg *reg;
    struct phx_schema **members;
    size_t n_members, cap_members;
};

static size_t phx_schema_map_hash(const json_t *p, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 17) & (cap - 1);
}

static struct phx_schema_node *phx_schema_map_get(const struct phx_schema_reg *r, const json_t *k)
{
    if (!r->map_cap)
        return NULL;
    for (size_t i = phx_schema_map_hash(k, r->map_cap);; i = (i + 1) & (r->map_cap - 1)) {
        if (!r->map[i].key)
            return NULL;
        if (r->map[i].key == k)
            return r->map[i].node;
    }
}

static void phx_schema_map_put_raw(struct phx_schema_slot *map, size_t cap, const json_t *k,
                                   struct phx_schema_node *n)
{
    size_t i = phx_schema_map_hash(k, cap);
    while (map[i].key && map[i].key != k)
        i = (i + 1) & (cap - 1);
    map[i].key = k;
    map[i].node = n;
}

/* Rebuild the map from the node list at the given capacity (growth, or after a rollback). */
static int phx_schema_map_rebuild(struct phx_schema_reg *r, size_t cap)
{
    struct phx_schema_slot *map = calloc(cap, sizeof(*map));
    if (!map)
        return -1;
    for (size_t i = 0; i < r->n_nodes; i++)
        phx_schema_map_put_raw(map, cap, r->nodes[i]->json, r->nodes[i]);
    free(r->map);
    r->map = map;
    r->map_cap = cap;
    r->map_used = r->n_nodes;
    /* r->map owns the new map (phx_schema_reg_free frees it). gcc 12's analyzer, on the path
     * from phx_schema_set_add, loses track of the registry it was stored in and calls it a
     * leak; its other paths here are clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
    return 0;
#pragma GCC diagnostic pop
}

static struct phx_schema_node *phx_schema_node_new(struct phx_schema_reg *r, json_t *js)
{
    if (r->n_nodes == r->cap_nodes) {
        size_t cap = r->cap_nodes ? r->cap_nodes * 2 : 64;
        struct phx_schema_node **nodes = realloc(r->nodes, cap * sizeof(*nodes));
        if (!nodes)
            return NULL;
        r->nodes = nodes;
        r->cap_nodes = cap;
    }
    if ((r->map_used + 1) * 2 > r->map_cap &&
        phx_schema_map_rebuild(r, r->map_cap ? r->map_cap * 2 : 128) < 0)
        return NULL;
    struct phx_schema_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->id = r->n_nodes;
    n->json = js;
    n->boolean = -1;
    n->min_length = n->max_length = -1;
    n->min_items = n->max_items = n->min_contains = n->max_contains = -1;
    n->min_props = n->max_props = -1;
    r->nodes[r->n_nodes++] = n;
    phx_schema_map_put_raw(r->map, r->map_cap, js, n);
    r->map_used++;
    return n;
}

static void phx_schema_node_free(struct phx_schema_node *n)
{
    free(n->ref_uri);
    free(n->dynref_uri);
    free(n->ref_where);
    if (n->pattern) {
        regfree(n->pattern);
        free(n->pattern);
    }
    free(n->fast);
    for (size_t i = 0; i < n->n_pats; i++)
        regfree(&n->pats[i].re);
    free(n->pats);
    free(n->prefix);
    free(n->all_of);
    free(n->any_of);
    free(n->one_of);
    free(n);
}

static void phx_schema_res_free(struct phx_schema_res *res)
{
    for (size_t i = 0; i < res->n_anchors; i++)
        free(res->anchors[i].name);
    free(res->anchors);
    free(res->uri);
    free(res);
}

static struct phx_schema_res *phx_schema_res_find(const struct phx_schema_reg *r, const char *uri,
                                                  size_t len)
{
    for (size_t i = 0; i < r->n_res; i++) {
        if (strlen(r->res[i]->uri) == len && memcmp(r->res[i]->uri, uri, len) == 0)
            return r->res[i];
    }
    return NULL;
}

static const struct phx_schema_anchor *phx_schema_anchor_find(const struct phx_schema_res *res,
                                                              const char *name, size_t len)
{
    for (size_t i = 0; i < res->n_anchors; i++) {
        if (strlen(res->anchors[i].name) == len && memcmp(res->anchors[i].name, name, len) == 0)
            return &res->anchors[i];
    }
    return NULL;
}

static struct phx_schema_reg *phx_schema_reg_new(void)
{
    struct phx_schema_reg *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->docs = json_array();
    if (!r->docs) {
        free(r);
        return NULL;
    }
    /* A missing C.UTF-8 only degrades patterns to byte semantics; it is not an error. */
    r->utf8 = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    return r;
}

static void phx_schema_reg_free(struct phx_schema_reg *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_nodes; i++)
        phx_schema_node_free(r->nodes[i]);
    for (size_t i = 0; i < r->n_res; i++)
        phx_schema_res_free(r->res[i]);
    free(r->nodes);
    free(r->res);
    free(r->map);
    json_decref(r->docs);
    if (r->utf8)
        freelocale(r->utf8);
    free(r);
}

/* --- regex: ECMA-262 -> POSIX extended ---------------------------------------------------- */

/* What one escape (after the backslash) stands for. */
enum phx_schema_esc_kind {
    PHX_SCHEMA_ESC_CHAR,   /* one code point */
    PHX_SCHEMA_ESC_CLASS,  /* bracket content, e.g. "0-9" */
    PHX_SCHEMA_ESC_NCLASS, /* the complement of a bracket content */
    PHX_SCHEMA_ESC_RAW,    /* copied to the POSIX pattern as is */
};

struct phx_schema_esc {
    enum phx_schema_esc_kind kind;
    uint32_t cp;
    const char *text;
};

struct phx_schema_rx {
    const char *s;
    size_t len, i;
    struct phx_schema_buf out;
    const char *bad; /* why the pattern cannot be translated */
};

/* \p{...} names we can map onto glibc character classes. */
static const char *phx_schema_rx_prop(const char *name, size_t len)
{
    static const struct {
        const char *name, *cls;
    } props[] = {
        {"L", "[:alpha:]"},  {"Letter", "[:alpha:]"},           {"Lu", "[:upper:]"},
        {"Ll", "[:lower:]"}, {"Uppercase_Letter", "[:upper:]"}, {"Lowercase_Letter", "[:lower:]"},
        {"Nd", "[:digit:]"}, {"Decimal_Number", "[:digit:]"},
    };
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (strlen(props[i].name) == len && memcmp(props[i].name, name, len) == 0)
            return props[i].cls;
    }
    return NULL;
}

static int phx_schema_rx_hex(struct phx_schema_rx *rx, size_t n, uint32_t *cp)
{
    *cp = 0;
    for (size_t k = 0; k < n; k++) {
        if (rx->i >= rx->len || !phx_schema_is_xdigit(rx->s[rx->i]))
            return -1;
        *cp = *cp * 16 + (uint32_t)phx_schema_xval(rx->s[rx->i++]);
    }
    return 0;
}

/* \uHHHH (a surrogate pair counts as one code point) or \u{H...}; rx->i is after the 'u'. */
static int phx_schema_rx_unicode(struct phx_schema_rx *rx, uint32_t *cp)
{
    if (rx->i < rx->len && rx->s[rx->i] == '{') {
        rx->i++;
        *cp = 0;
        size_t digits = 0;
        while (rx->i < rx->len && phx_schema_is_xdigit(rx->s[rx->i]) && digits < 6) {
            *cp = *cp * 16 + (uint32_t)phx_schema_xval(rx->s[rx->i++]);
            digits++;
        }
        if (!digits || rx->i >= rx->len || rx->s[rx->i] != '}' || *cp > 0x10ffff)
            return -1;
        rx->i++;
        return 0;
    }
    if (phx_schema_rx_hex(rx, 4, cp) < 0)
        return -1;
    if (*cp >= 0xd800 && *cp < 0xdc00 && rx->i + 6 <= rx->len && rx->s[rx->i] == '\\' &&
        rx->s[rx->i + 1] == 'u') {
        size_t save = rx->i;
        uint32_t lo;
        rx->i += 2;
        if (phx_schema_rx_hex(rx, 4, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000)
            *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
        else
            rx->i = save;
    }
    return 0;
}

/* Parse the escape after a backslash at rx->i. */
static int phx_schema_rx_escape(struct phx_schema_rx *rx, int in_class, struct phx_schema_esc *e)
{
    if (rx->i >= rx->len) {
        rx->bad = "trailing backslash";
        return -1;
    }
    char c = rx->s[rx->i++];
    e->kind = PHX_SCHEMA_ESC_CHAR;
    e->text = NULL;
    switch (c) {
    case 'd':
    case 'D':
        e->kind = c == 'd' ? PHX_SCHEMA_ESC_CLASS : PHX_SCHEMA_ESC_NCLASS;
        e->text = "0-9";
        return 0;
    case 'w':
    case 'W':
        e->kind = c == 'w' ? PHX_SCHEMA_ESC_CLASS : PHX_SCHEMA_ESC_NCLASS;
        e->text = "A-Za-z0-9_";
        return 0;
    case 's':
    case 'S':
        e->kind = c == 's' ? PHX_SCHEMA_ESC_CLASS : PHX_SCHEMA_ESC_NCLASS;
        e->text = "[:space:]";
        return 0;
    case 'b':
    case 'B':
        if (in_class && c == 'b') {
            e->cp = 8; /* [\b] is backspace */
            return 0;
        }
        if (in_class) {
            rx->bad = "\\B inside [...]";
            return -1;
        }
        /* glibc's word-boundary operators; ECMA's \w is ASCII, glibc's is close enough. */
        e->kind = PHX_SCHEMA_ESC_RAW;
        e->text = c == 'b' ? "\\b" : "\\B";
        return 0;
    case 'n':
        e->cp = '\n';
        return 0;
    case 't':
        e->cp = '\t';
        return 0;
    case 'r':
        e->cp = '\r';
        return 0;
    case 'f':
        e->cp = '\f';
        return 0;
    case 'v':
        e->cp = '\v';
        return 0;
    case 'x':
        if (phx_schema_rx_hex(rx, 2, &e->cp) < 0) {
            rx->bad = "bad \\x escape";
            return -1;
        }
        return 0;
    case 'u':
        if (phx_schema_rx_unicode(rx, &e->cp) < 0) {
            rx->bad = "bad \\u escape";
            return -1;
        }
        return 0;
    case 'c':
        if (rx->i >= rx->len || !phx_schema_is_alpha(rx->s[rx->i])) {
            rx->bad = "bad \\c escape";
            return -1;
        }
        e->cp = (uint32_t)(rx->s[rx->i++] % 32);
        return 0;
    case 'p':
    case 'P': {
        const char *end = rx->i < rx->len && rx->s[rx->i] == '{'
                              ? memchr(rx->s + rx->i, '}', rx->len - rx->i)
                              : NULL;
        const char *cls =
            end ? phx_schema_rx_prop(rx->s + rx->i + 1, (size_t)(end - rx->s) - rx->i - 1) : NULL;
        if (!cls) {
            rx->bad = "unsupported \\p{...} property";
            return -1;
        }
        rx->i = (size_t)(end - rx->s) + 1;
        e->kind = c == 'p' ? PHX_SCHEMA_ESC_CLASS : PHX_SCHEMA_ESC_NCLASS;
        e->text = cls;
        return 0;
    }
    default:
        break;
    }
    if (c >= '1' && c <= '9') {
        rx->bad = "backreferences are not supported";
        return -1;
    }
    if (c == '0' && !(rx->i < rx->len && phx_schema_is_digit(rx->s[rx->i]))) {
        rx->bad = "\\0 (NUL) is not supported";
        return -1;
    }
    if ((unsigned char)c >= 0x80) {
        rx->i--;
        e->cp = phx_schema_utf8_next(rx->s, rx->len, &rx->i);
        return 0;
    }
    if (phx_schema_is_alpha(c) || phx_schema_is_digit(c) || c == '_') {
        rx->bad = "unsupported escape";
        return -1;
    }
    e->cp = (uint32_t)c; /* identity escape of punctuation */
    return 0;
}

/* A literal code point outside brackets. */
static void phx_schema_rx_lit(struct phx_schema_rx *rx, uint32_t cp)
{
    if (cp == '^')
        phx_schema_buf_str(&rx->out, "\\^");
    else if (cp < 0x80 && strchr(".[]()*+?{}|$\\", (int)cp)) {
        /* inside brackets every one of these is literal, even '\' */
        phx_schema_buf_chr(&rx->out, '[');
        phx_schema_buf_chr(&rx->out, (char)cp);
        phx_schema_buf_chr(&rx->out, ']');
    } else {
        phx_schema_buf_utf8(&rx->out, cp);
    }
}

struct phx_schema_range {
    uint32_t lo, hi;
};

/* [...] at rx->i. POSIX brackets have no escapes, so the members are collected first and
 * then written in an order where ']' '^' '-' '[' are literal by position. */
static int phx_schema_rx_class(struct phx_schema_rx *rx)
{
    struct phx_schema_range ranges[128];
    size_t n = 0;
    struct phx_schema_buf cls = {0};
    int neg = 0, rbr = 0, caret = 0, dash = 0, lbr = 0, ok = -1;

    rx->i++;
    if (rx->i < rx->len && rx->s[rx->i] == '^') {
        neg = 1;
        rx->i++;
    }
    for (;;) {
        if (rx->i >= rx->len) {
            rx->bad = "unterminated character class";
            goto out;
        }
        if (rx->s[rx->i] == ']') {
            rx->i++;
            break;
        }
        struct phx_schema_esc a = {PHX_SCHEMA_ESC_CHAR, 0, NULL};
        if (rx->s[rx->i] == '\\') {
            rx->i++;
            if (phx_schema_rx_escape(rx, 1, &a) < 0)
                goto out;
        } else {
            a.cp = phx_schema_utf8_next(rx->s, rx->len, &rx->i);
        }
        if (a.kind == PHX_SCHEMA_ESC_CLASS) {
            phx_schema_buf_str(&cls, a.text);
            continue;
        }
        if (a.kind != PHX_SCHEMA_ESC_CHAR) {
            rx->bad = "negated class escape inside [...]";
            goto out;
        }
        uint32_t hi = a.cp;
        if (rx->i + 1 < rx->len && rx->s[rx->i] == '-' && rx->s[rx->i + 1] != ']') {
            rx->i++;
            struct phx_schema_esc b = {PHX_SCHEMA_ESC_CHAR, 0, NULL};
            if (rx->s[rx->i] == '\\') {
                rx->i++;
                if (phx_schema_rx_escape(rx, 1, &b) < 0)
                    goto out;
            } else {
                b.cp = phx_schema_utf8_next(rx->s, rx->len, &rx->i);
            }
            if (b.kind != PHX_SCHEMA_ESC_CHAR || b.cp < a.cp) {
                rx->bad = "bad range in character class";
                goto out;
            }
            hi = b.cp;
            if (strchr("]-[^", (int)a.cp) || (hi < 0x80 && strchr("]-", (int)hi))) {
                rx->bad = "range starting or ending with ] - [ ^";
                goto out;
            }
        }
        if (a.cp == 0) {
            rx->bad = "NUL in character class";
            goto out;
        }
        if (n == sizeof(ranges) / sizeof(ranges[0])) {
            rx->bad = "character class too large";
            goto out;
        }
        ranges[n].lo = a.cp;
        ranges[n++].hi = hi;
    }

    if (n == 0 && cls.len == 0) {
        if (!neg) {
            rx->bad = "empty class []";
            goto out;
        }
        phx_schema_buf_chr(&rx->out, '.'); /* [^] is any character; POSIX '.' matches \n too */
        ok = 0;
        goto out;
    }
    struct phx_schema_buf *o = &rx->out;
    size_t body;
    phx_schema_buf_str(o, neg ? "[^" : "[");
    body = o->len;
    for (size_t k = 0; k < n; k++) {
        if (ranges[k].lo == ranges[k].hi && ranges[k].lo < 0x80) {
            char c = (char)ranges[k].lo;
            if (c == ']' || c == '^' || c == '-' || c == '[') {
                rbr |= c == ']';
                caret |= c == '^';
                dash |= c == '-';
                lbr |= c == '[';
                continue;
            }
        }
        phx_schema_buf_utf8(o, ranges[k].lo);
        if (ranges[k].hi != ranges[k].lo) {
            phx_schema_buf_chr(o, '-');
            phx_schema_buf_utf8(o, ranges[k].hi);
        }
    }
    if (rbr) {
        /* ']' is literal only right after the opening "[" or "[^" */
        struct phx_schema_buf t = {0};
        phx_schema_buf_add(&t, o->p ? o->p + body : "", o->len - body);
        o->len = body;
        phx_schema_buf_chr(o, ']');
        phx_schema_buf_add(o, t.p ? t.p : "", t.len);
        if (t.oom)
            o->oom = 1;
        free(t.p);
    }
    phx_schema_buf_add(o, cls.p ? cls.p : "", cls.len);
    if (lbr)
        phx_schema_buf_chr(o, '['); /* never followed by ':' '.' '=' here */
    if (caret) {
        if (o->len == body && !neg && dash) {
            phx_schema_buf_str(o, "-^");
            dash = 0;
        } else if (o->len == body && !neg) {
            o->len = body - 1; /* a class of just '^' */
            phx_schema_buf_str(o, "\\^");
            ok = 0;
            goto out;
        } else {
            phx_schema_buf_chr(o, '^');
        }
    }
    if (dash)
        phx_schema_buf_chr(o, '-');
    phx_schema_buf_chr(o, ']');
    ok = 0;
out:
    free(cls.p);
    return ok;
}

/* {n}, {n,} or {n,m} at rx->i? Anything else is a literal '{' in ECMA-262 (Annex B). */
static size_t phx_schema_rx_quant_len(const struct phx_schema_rx *rx)
{
    size_t j = rx->i + 1, digits = 0;
    while (j < rx->len && phx_schema_is_digit(rx->s[j]))
        j++, digits++;
    if (!digits)
        return 0;
    if (j < rx->len && rx->s[j] == ',') {
        j++;
        while (j < rx->len && phx_schema_is_digit(rx->s[j]))
            j++;
    }
    if (j >= rx->len || rx->s[j] != '}')
        return 0;
    return j + 1 - rx->i;
}

/* Translate an ECMA-262 pattern; a new POSIX ERE string, or NULL with *why set. */
static char *phx_schema_rx_translate(const char *src, size_t len, const char **why)
{
    struct phx_schema_rx rx = {src, len, 0, {0}, NULL};
    while (rx.i < rx.len && !rx.bad) {
        char c = rx.s[rx.i];
        if (c == '\\') {
            struct phx_schema_esc e;
            rx.i++;
            if (phx_schema_rx_escape(&rx, 0, &e) < 0)
                break;
            if (e.kind == PHX_SCHEMA_ESC_RAW) {
                phx_schema_buf_str(&rx.out, e.text);
            } else if (e.kind == PHX_SCHEMA_ESC_CLASS || e.kind == PHX_SCHEMA_ESC_NCLASS) {
                phx_schema_buf_str(&rx.out, e.kind == PHX_SCHEMA_ESC_CLASS ? "[" : "[^");
                phx_schema_buf_str(&rx.out, e.text);
                phx_schema_buf_chr(&rx.out, ']');
            } else if (e.cp == 0) {
                rx.bad = "\\0 (NUL) is not supported";
            } else {
                phx_schema_rx_lit(&rx, e.cp);
            }
        } else if (c == '[') {
            phx_schema_rx_class(&rx);
        } else if (c == '(') {
            rx.i++;
            if (rx.i < rx.len && rx.s[rx.i] == '?') {
                const char *gt;
                if (rx.i + 1 < rx.len && rx.s[rx.i + 1] == ':') {
                    rx.i += 2;
                } else if (rx.i + 2 < rx.len && rx.s[rx.i + 1] == '<' && rx.s[rx.i + 2] != '=' &&
                           rx.s[rx.i + 2] != '!' &&
                           (gt = memchr(rx.s + rx.i, '>', rx.len - rx.i)) != NULL) {
                    rx.i = (size_t)(gt - rx.s) + 1; /* named group: the name does not matter */
                } else {
                    rx.bad = "lookaround and (?...) groups are not supported";
                    break;
                }
            }
            phx_schema_buf_chr(&rx.out, '(');
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            size_t q = c == '{' ? phx_schema_rx_quant_len(&rx) : 1;
            if (q == 0) {
                phx_schema_rx_lit(&rx, '{');
                rx.i++;
                continue;
            }
            phx_schema_buf_add(&rx.out, rx.s + rx.i, q);
            rx.i += q;
            /* Lazy and greedy quantifiers accept the same strings; only captures differ. */
            if (rx.i < rx.len && rx.s[rx.i] == '?')
                rx.i++;
        } else if (c == '}' || c == ']') {
            phx_schema_rx_lit(&rx, (uint32_t)c);
            rx.i++;
        } else if (c == '.') {
            phx_schema_buf_str(&rx.out, "[^\n\r]");
            rx.i++;
        } else {
            phx_schema_buf_chr(&rx.out, c);
            rx.i++;
        }
    }
    if (rx.bad || rx.out.oom) {
        *why = rx.bad ? rx.bad : "out of memory";
        free(rx.out.p);
        return NULL;
    }
    return phx_schema_buf_take(&rx.out);
}

/* --- fast anchored patterns --------------------------------------------------------------
 * Most patterns in Phoenix's schemas are anchored runs of ASCII character classes (ids:
 * "^[A-Za-z0-9._:-]{1,128}$", kinds: "^[a-z]+[.][a-z_]+$"), checked on every message. glibc's
 * regexec spends microseconds on each (a UTF-8 locale and a bounded repeat expanded 128 times)
 * and showed as the planner's largest user-space cost after the syscalls. Such a pattern is
 * compiled here into up to PHX_SCHEMA_FAST_MAX (set, min, max) atoms and matched directly;
 * anything else -- groups, alternation, escapes, negated classes, non-ASCII -- stays with the
 * regex. The regex is still compiled for every pattern, so both always agree on what is
 * accepted at load time. */
#define PHX_SCHEMA_FAST_MAX 6

struct phx_schema_fast {
    int n;
    struct {
        uint64_t set[2]; /* ASCII bytes allowed */
        long min, max;   /* max -1: unbounded */
    } at[PHX_SCHEMA_FAST_MAX];
};

static void phx_schema_fast_add(uint64_t set[2], unsigned c)
{
    set[c >> 6] |= (uint64_t)1 << (c & 63);
}

static int phx_schema_fast_has(const uint64_t set[2], unsigned char c)
{
    return c < 128 && (set[c >> 6] >> (c & 63)) & 1;
}

/* A literal outside a class: plain ASCII letters, digits and a few punctuation marks. */
static int phx_schema_fast_lit(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == ':' || c == '/' || c == '@' || c == '-' || c == ',' || c == '=' || c == '#' ||
           c == '%' || c == '!' || c == '~' || c == '\'' || c == '"' || c == '<' || c == '>' ||
           c == ';' || c == '&' || c == ' ';
}

/* Parse "^atoms$" into a new matcher, or NULL when the pattern is not that simple. */
static struct phx_schema_fast *phx_schema_fast_compile(const char *src, size_t len)
{
    if (len < 2 || src[0] != '^' || src[len - 1] != '$' || (len >= 3 && src[len - 2] == '\\'))
        return NULL;
    struct phx_schema_fast f;
    memset(&f, 0, sizeof(f));
    size_t i = 1, end = len - 1;
    while (i < end) {
        if (f.n == PHX_SCHEMA_FAST_MAX)
            return NULL;
        uint64_t *set = f.at[f.n].set;
        if (src[i] == '[') {
            size_t j = i + 1;
            if (j < end && src[j] == '^')
                return NULL;
            while (j < end && src[j] != ']') {
                unsigned char c = (unsigned char)src[j];
                if (c >= 128 || c == '\\' || c == '[')
                    return NULL;
                if (j + 2 < end && src[j + 1] == '-' && src[j + 2] != ']') {
                    unsigned char hi = (unsigned char)src[j + 2];
                    if (hi >= 128 || hi == '\\' || hi < c)
                        return NULL;
                    for (unsigned k = c; k <= hi; k++)
                        phx_schema_fast_add(set, k);
                    j += 3;
                } else {
                    phx_schema_fast_add(set, c);
                    j++;
                }
            }
            if (j >= end || j == i + 1)
                return NULL;
            i = j + 1;
        } else if (phx_schema_fast_lit(src[i])) {
            phx_schema_fast_add(set, (unsigned char)src[i]);
            i++;
        } else {
            return NULL;
        }
        long mn = 1, mx = 1;
        if (i < end && (src[i] == '+' || src[i] == '*' || src[i] == '?')) {
            mn = src[i] == '+' ? 1 : 0;
            mx = src[i] == '?' ? 1 : -1;
            i++;
        } else if (i < end && src[i] == '{') {
            char *e;
            mn = strtol(src + i + 1, &e, 10);
            if (e == src + i + 1 || mn < 0 || mn > 100000)
                return NULL;
            mx = mn;
            if (*e == ',') {
                const char *b = e + 1;
                mx = strtol(b, &e, 10);
                if (e == b)
                    mx = -1;
                else if (mx < mn || mx > 100000)
                    return NULL;
            }
            if (*e != '}' || (size_t)(e - src) >= end)
                return NULL;
            i = (size_t)(e - src) + 1;
        }
        if (i < end && (src[i] == '?' || src[i] == '+' || src[i] == '*' || src[i] == '{'))
            return NULL; /* lazy or stacked quantifiers: leave them to the regex */
        f.at[f.n].min = mn;
        f.at[f.n].max = mx;
        f.n++;
    }
    struct phx_schema_fast *out = malloc(sizeof(*out));
    if (out)
        *out = f;
    return out;
}

/* Does s[pos..len) match atoms k.. to the end? Greedy with backtracking (at most
 * PHX_SCHEMA_FAST_MAX levels deep): 1 yes, 0 no, -1 when *budget (characters examined) ran
 * out. Backtracking over runs of overlapping classes is polynomial in the length ("^a*a*a*a*a*b$"
 * on 20,000 a's took minutes: fuzz_schema), so the caller gives it a budget linear in the
 * length and asks the regex instead when it is spent; both accept exactly the same strings. */
static int phx_schema_fast_at(const struct phx_schema_fast *f, int k, const char *s, size_t pos,
                              size_t len, size_t *budget)
{
    if (k == f->n)
        return pos == len;
    size_t run = 0, cap = f->at[k].max < 0 ? len - pos : (size_t)f->at[k].max;
    while (run < cap && pos + run < len &&
           phx_schema_fast_has(f->at[k].set, (unsigned char)s[pos + run]))
        run++;
    if (*budget <= run)
        return -1;
    *budget -= run + 1;
    if (k == f->n - 1) /* the last atom must take the rest */
        return pos + run == len && run >= (size_t)f->at[k].min;
    for (size_t r = run + 1; r-- > (size_t)f->at[k].min;) {
        int m = phx_schema_fast_at(f, k + 1, s, pos + r, len, budget);
        if (m != 0)
            return m;
    }
    return 0;
}

/* How many atoms glibc's regcomp builds for a POSIX ERE: it expands x{n,m} into max(n,m)
 * copies of x (x{n,} into n+1, x+ into two) and builds its automaton from them, so nested
 * or large bounds multiply. "((a{0,1000}){0,1000}){0,1000}" took minutes and gigabytes, and
 * 8,000 alternatives a second and 1.5 GB (fuzz_schema); Phoenix's own schemas need at most
 * 251. Saturates just past PHX_SCHEMA_RX_MAX_ATOMS. */
#define PHX_SCHEMA_RX_MAX_ATOMS 2048
static uint64_t phx_schema_rx_atoms(const char *p)
{
    const uint64_t cap = PHX_SCHEMA_RX_MAX_ATOMS + 1;
    uint64_t total[64], last[64]; /* per open group: atoms so far, the last atom's */
    int d = 0;
    total[0] = last[0] = 0;
    while (*p) {
        uint64_t atom = 1;
        if (*p == '(') {
            if (d == 63)
                return cap;
            d++, p++;
            total[d] = last[d] = 0;
            continue;
        } else if (*p == ')' && d > 0) {
            atom = total[d] ? total[d] : 1;
            d--, p++;
        } else if (*p == '|') {
            last[d] = 0, p++;
            continue;
        } else if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
            uint64_t copies = 2;
            if (*p == '{') {
                char *e;
                unsigned long n = strtoul(p + 1, &e, 10), m = n; /* {n} */
                if (*e == ',')
                    m = e[1] == '}' ? n + 1 : strtoul(e + 1, &e, 10); /* {n,} or {n,m} */
                copies = m > n ? m : n;
                if (copies > cap)
                    copies = cap;
                p = strchr(p, '}') ? strchr(p, '}') + 1 : p + strlen(p);
            } else {
                p++;
            }
            uint64_t grown = last[d] * (copies ? copies : 1);
            total[d] += (grown > cap ? cap : grown) - last[d];
            last[d] = grown > cap ? cap : grown;
            if (total[d] > cap)
                return cap;
            continue;
        } else if (*p == '\\' && p[1]) {
            p += 2;
        } else if (*p == '[') {
            /* a bracket expression is one atom: "[]...]", "[^]...]", "[:class:]" inside */
            const char *q = p + 1;
            if (*q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']') {
                const char *close;
                if (*q == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=') &&
                    (close = strstr(q + 2, (const char[]){q[1], ']', 0})) != NULL)
                    q = close + 2;
                else
                    q++;
            }
            p = *q ? q + 1 : q;
        } else {
            p++;
        }
        total[d] += atom;
        last[d] = atom;
        if (total[d] > cap)
            return cap;
    }
    while (d > 0) /* unbalanced: regcomp refuses it anyway */
        total[d - 1] += total[d], d--;
    return total[0] > cap ? cap : total[0];
}

/* Compile an ECMA-262 pattern into re. 0, or -1 with a message in why/whylen. */
static int phx_schema_rx_compile(const struct phx_schema_reg *r, regex_t *re, const char *src,
                                 size_t len, char *why, size_t whylen)
{
    const char *bad = NULL;
    char *posix = phx_schema_rx_translate(src, len, &bad);
    if (!posix) {
        snprintf(why, whylen, "%s", bad);
        return -1;
    }
    if (phx_schema_rx_atoms(posix) > PHX_SCHEMA_RX_MAX_ATOMS) {
        snprintf(why, whylen, "pattern too large: over %d atoms once its repeats are expanded",
                 PHX_SCHEMA_RX_MAX_ATOMS);
        free(posix);
        return -1;
    }
    locale_t old = r->utf8 ? uselocale(r->utf8) : (locale_t)0;
    int rc = regcomp(re, posix, REG_EXTENDED | REG_NOSUB);
    if (old)
        uselocale(old);
    if (rc != 0) {
        char msg[128];
        regerror(rc, re, msg, sizeof(msg));
        snprintf(why, whylen, "%s", msg);
    }
    free(posix);
    return rc == 0 ? 0 : -1;
}

/* 1 when the pattern matches somewhere in s[0..len). REG_STARTEND lets strings hold NUL. */
static int phx_schema_rx_match(const struct phx_schema_reg *r, const regex_t *re, const char *s,
                               size_t len)
{
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)len;
    locale_t old = r->utf8 ? uselocale(r->utf8) : (locale_t)0;
    int rc = regexec(re, s, 1, m, REG_STARTEND);
    if (old)
        uselocale(old);
    return rc == 0;
}

/* The fast matcher within its budget, else the regex (see phx_schema_fast_at). re is NULL for
 * a one-atom pattern (phx_schema_cc_scalar), whose budget cannot run out: it reads at most len
 * characters of the 16 * len + 1024 it is given. */
static int phx_schema_fast_match(const struct phx_schema_reg *r, const struct phx_schema_fast *f,
                                 const regex_t *re, const char *s, size_t len)
{
    size_t budget = 16 * len + 1024;
    int m = phx_schema_fast_at(f, 0, s, 0, len, &budget);
    return m >= 0 || !re ? m == 1 : phx_schema_rx_match(r, re, s, len);
}

/* --- formats ------------------------------------------------------------------------------ */

static int phx_schema_num(const char *s, size_t n, int *out)
{
    *out = 0;
    for (size_t i = 0; i < n; i++) {
        if (!phx_schema_is_digit(s[i]))
            return 0;
        *out = *out * 10 + (s[i] - '0');
    }
    return 1;
}

/* RFC 3339 date-time: full-date "T" full-time, with "T" and "Z" in either case. */
static int phx_schema_fmt_date_time(const char *s, size_t len)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return 0;
    if (!phx_schema_num(s, 4, &y) || !phx_schema_num(s + 5, 2, &mo) ||
        !phx_schema_num(s + 8, 2, &d) || !phx_schema_num(s + 11, 2, &h) ||
        !phx_schema_num(s + 14, 2, &mi) || !phx_schema_num(s + 17, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return 0;
    size_t i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && phx_schema_is_digit(s[i]))
            i++;
        if (i == start)
            return 0;
    }
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        sign = s[i] == '+' ? 1 : -1;
        if (len - i != 6 || s[i + 3] != ':' || !phx_schema_num(s + i + 1, 2, &oh) ||
            !phx_schema_num(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return 0;
        i += 6;
    } else {
        return 0;
    }
    if (i != len)
        return 0;
    if (sec == 60) {
        /* a leap second is inserted at 23:59:60 UTC only */
        int utc = ((h * 60 + mi - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;
        if (utc != 23 * 60 + 59)
            return 0;
    }
    return 1;
}

/* dec-octet "." dec-octet "." dec-octet "." dec-octet, without leading zeros. */
static int phx_schema_fmt_ipv4(const char *s, size_t len)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        int v = 0;
        while (i < len && phx_schema_is_digit(s[i]) && i - start < 3)
            v = v * 10 + (s[i++] - '0');
        if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
            return 0;
        if (part < 3) {
            if (i >= len || s[i] != '.')
                return 0;
            i++;
        }
    }
    return i == len;
}

static int phx_schema_fmt_ipv6(const char *s, size_t len)
{
    size_t i = 0;
    int groups = 0, gap = 0;
    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 1;
        i = 2;
    } else if (len == 0 || s[0] == ':') {
        return 0;
    }
    while (i < len) {
        size_t j = i;
        while (j < len && phx_schema_is_xdigit(s[j]))
            j++;
        if (j < len && s[j] == '.') {
            if (!phx_schema_fmt_ipv4(s + i, len - i))
                return 0;
            groups += 2;
            break;
        }
        if (j == i || j - i > 4)
            return 0;
        groups++;
        i = j;
        if (i == len)
            break;
        if (s[i++] != ':' || i == len)
            return 0;
        if (s[i] == ':') {
            if (gap)
                return 0;
            gap = 1;
            i++;
        }
    }
    return gap ? groups <= 7 : groups == 8;
}

/* RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
static int phx_schema_fmt_hostname(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!phx_schema_is_alpha(s[i]) && !phx_schema_is_digit(s[i]) && !(s[i] == '-' && label > 0))
            return 0;
        label++;
    }
    return 1;
}

/* RFC 5321 Mailbox: Dot-string or Quoted-string "@" Domain or address literal. */
static int phx_schema_fmt_email(const char *s, size_t len)
{
    static const char atext[] = "!#$%&'*+-/=?^_`{|}~";
    size_t i = 0;
    if (len > 0 && s[0] == '"') {
        for (i = 1;; i++) {
            if (i >= len)
                return 0;
            if (s[i] == '"')
                break;
            if (s[i] == '\\')
                i++;
            if (i >= len || s[i] < 0x20 || s[i] > 0x7e)
                return 0;
        }
        i++;
    } else {
        for (;;) {
            size_t start = i;
            while (i < len && (phx_schema_is_alpha(s[i]) || phx_schema_is_digit(s[i]) ||
                               (s[i] && strchr(atext, s[i]))))
                i++;
            if (i == start)
                return 0;
            if (i < len && s[i] == '.') {
                i++;
                continue;
            }
            break;
        }
    }
    if (i > 64 || i >= len || s[i] != '@')
        return 0;
    const char *d = s + i + 1;
    size_t n = len - i - 1;
    if (n >= 2 && d[0] == '[' && d[n - 1] == ']') {
        if (n > 7 && strncmp(d + 1, "IPv6:", 5) == 0)
            return phx_schema_fmt_ipv6(d + 6, n - 7);
        return phx_schema_fmt_ipv4(d + 1, n - 2);
    }
    return phx_schema_fmt_hostname(d, n);
}

static int phx_schema_uri_unreserved(char c)
{
    return phx_schema_is_alpha(c) || phx_schema_is_digit(c) || (c && strchr("-._~", c));
}

static int phx_schema_uri_subdelim(char c)
{
    return c && strchr("!$&'()*+,;=", c);
}

/* One unreserved / sub-delims / extra character or a %HH triplet at s[*i]. */
static int phx_schema_uri_char(const char *s, size_t len, size_t *i, const char *extra)
{
    char c = s[*i];
    if (c == '%') {
        if (*i + 2 >= len || !phx_schema_is_xdigit(s[*i + 1]) || !phx_schema_is_xdigit(s[*i + 2]))
            return 0;
        *i += 3;
        return 1;
    }
    if (phx_schema_uri_unreserved(c) || phx_schema_uri_subdelim(c) || (c && strchr(extra, c))) {
        (*i)++;
        return 1;
    }
    return 0;
}

static int phx_schema_uri_authority(const char *s, size_t len)
{
    size_t i = 0;
    const char *at = memchr(s, '@', len);
    if (at) {
        size_t end = (size_t)(at - s);
        while (i < end) {
            if (!phx_schema_uri_char(s, end, &i, ":"))
                return 0;
        }
        i = end + 1;
    }
    if (i < len && s[i] == '[') {
        const char *close = memchr(s + i, ']', len - i);
        if (!close)
            return 0;
        const char *ip = s + i + 1;
        size_t n = (size_t)(close - ip);
        if (n > 0 && (ip[0] == 'v' || ip[0] == 'V')) {
            /* IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
            size_t k = 1;
            while (k < n && phx_schema_is_xdigit(ip[k]))
                k++;
            if (k == 1 || k >= n - 1 || ip[k] != '.')
                return 0;
            for (k++; k < n;) {
                if (ip[k] == '%' || !phx_schema_uri_char(ip, n, &k, ":"))
                    return 0;
            }
        } else if (!phx_schema_fmt_ipv6(ip, n)) {
            return 0;
        }
        i = (size_t)(close - s) + 1;
    } else {
        while (i < len && s[i] != ':') {
            if (!phx_schema_uri_char(s, len, &i, ""))
                return 0;
        }
    }
    if (i < len) {
        if (s[i++] != ':')
            return 0;
        while (i < len) {
            if (!phx_schema_is_digit(s[i++]))
                return 0;
        }
    }
    return 1;
}

/* RFC 3986 URI (not a relative reference): scheme ":" hier-part [ "?" query ] [ "#" frag ]. */
static int phx_schema_fmt_uri(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || !phx_schema_is_alpha(s[0]))
        return 0;
    while (i < len && (phx_schema_is_alpha(s[i]) || phx_schema_is_digit(s[i]) || s[i] == '+' ||
                       s[i] == '-' || s[i] == '.'))
        i++;
    if (i >= len || s[i] != ':')
        return 0;
    i++;
    if (i + 1 < len && s[i] == '/' && s[i + 1] == '/') {
        size_t start = i + 2;
        i = start;
        while (i < len && s[i] != '/' && s[i] != '?' && s[i] != '#')
            i++;
        if (!phx_schema_uri_authority(s + start, i - start))
            return 0;
    }
    int part = 0; /* 0 path, 1 query, 2 fragment */
    while (i < len) {
        if (s[i] == '?' && part == 0) {
            part = 1;
            i++;
        } else if (s[i] == '#' && part < 2) {
            part = 2;
            i++;
        } else if (s[i] == '/' || (part > 0 && s[i] == '?')) {
            i++;
        } else if (!phx_schema_uri_char(s, len, &i, ":@")) {
            return 0;
        }
    }
    return 1;
}

static int phx_schema_fmt_uuid(const char *s, size_t len)
{
    if (len != 36)
        return 0;
    for (size_t i = 0; i < len; i++) {
        int hyphen = i == 8 || i == 13 || i == 18 || i == 23;
        if (hyphen ? s[i] != '-' : !phx_schema_is_xdigit(s[i]))
            return 0;
    }
    return 1;
}

static const struct {
    const char *name;
    enum phx_schema_format fmt;
    int (*check)(const char *s, size_t len);
} phx_schema_formats[] = {
    {"date-time", PHX_SCHEMA_F_DATE_TIME, phx_schema_fmt_date_time},
    {"email", PHX_SCHEMA_F_EMAIL, phx_schema_fmt_email},
    {"uri", PHX_SCHEMA_F_URI, phx_schema_fmt_uri},
    {"uuid", PHX_SCHEMA_F_UUID, phx_schema_fmt_uuid},
};

/* --- compilation -------------------------------------------------------------------------- */

/* The 2020-12 meta-schema and its vocabulary meta-schemas, minus annotation-only keywords
 * (title, $comment, default, deprecated), so "$ref": PHX_SCHEMA_DIALECT works offline.
 * They are specification documents published by json-schema.org (BSD-3-Clause/AFL-3.0),
 * carried as data: Phoenix never fetches a schema over the network. */
static const char *const phx_schema_meta_docs[] = {
    /* https://json-schema.org/draft/2020-12/schema */
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"https://json-s"
    "chema.org/draft/2020-12/schema\",\"$dynamicAnchor\":\"meta\",\"allOf\":[{\"$ref\":\"me"
    "ta/core\"},{\"$ref\":\"meta/applicator\"},{\"$ref\":\"meta/unevaluated\"},{\"$ref\":\""
    "meta/validation\"},{\"$ref\":\"meta/meta-data\"},{\"$ref\":\"meta/format-annotation\"}"
    ",{\"$ref\":\"meta/content\"}],\"type\":[\"object\",\"boolean\"],\"properties\":{\"defi"
    "nitions\":{\"type\":\"object\",\"additionalProperties\":{\"$dynamicRef\":\"#meta\"}},\""
    "dependencies\":{\"type\":\"object\",\"additionalProperties\":{\"anyOf\":[{\"$dynamicRe"
    "f\":\"#meta\"},{\"$ref\":\"meta/validation#/$defs/stringArray\"}]}},\"$recursiveAnchor"
    "\":{\"$ref\":\"meta/core#/$defs/anchorString\"},\"$recursiveRef\":{\"$ref\":\"meta/cor"
    "e#/$defs/uriReferenceString\"}}}",
    /* https://json-schema.org/draft/2020-12/meta/core */
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"https://json-s"
    "chema.org/draft/2020-12/meta/core\",\"$dynamicAnchor\":\"meta\",\"type\":[\"object\",\""
    "boolean\"],\"properties\":{\"$id\":{\"$ref\":\"#/$defs/uriReferenceString\",\"pattern\""
    ":\"^[^#]*#?$\"},\"$schema\":{\"$ref\":\"#/$defs/uriString\"},\"$ref\":{\"$ref\":\"#/$d"
    "efs/uriReferenceString\"},\"$anchor\":{\"$ref\":\"#/$defs/anchorString\"},\"$dynamicRe"
    "f\":{\"$ref\":\"#/$defs/uriReferenceString\"},\"$dynamicAnchor\":{\"$ref\":\"#/$defs/a"
    "nchorString\"},\"$vocabulary\":{\"type\":\"object\",\"propertyNames\":{\"$ref\":\"#/$d"
    "efs/uriString\"},\"additionalProperties\":{\"type\":\"boolean\"}},\"$comment\":{\"type"
    "\":\"string\"},\"$defs\":{\"type\":\"object\",\"additionalProperties\":{\"$dynamicRef\""
    ":\"#meta\"}}},\"$defs\":{\"anchorString\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z_"
    "][-A-Za-z0-9._]*$\"},\"uriString\":{\"type\":\"string\",\"format\":\"uri\"},\"uriRefer"
    "enceString\":{\"type\":\"string\",\"format\":\"uri-reference\"}}}",
    /* https://json-schema.org/draft/2020-12/meta/applicator */
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"https://json-s"
    "chema.org/draft/2020-12/meta/applicator\",\"$dynamicAnchor\":\"meta\",\"type\":[\"obje"
    "ct\",\"boolean\"],\"properties\":{\"prefixItems\":{\"$ref\":\"#/$defs/schemaArray\"},\""
    "items\":{\"$dynamicRef\":\"#meta\"},\"contains\":{\"$dynamicRef\":\"#meta\"},\"additio"
    "nalProperties\":{\"$dynamicRef\":\"#meta\"},\"properties\":{\"type\":\"object\",\"addi"
    "tionalProperties\":{\"$dynamicRef\":\"#meta\"}},\"patternProperties\":{\"type\":\"obje"
    "ct\",\"additionalProperties\":{\"$dynamicRef\":\"#meta\"},\"propertyNames\":{\"format\""
    ":\"regex\"}},\"dependentSchemas\":{\"type\":\"object\",\"additionalProperties\":{\"$dy"
    "namicRef\":\"#meta\"}},\"propertyNames\":{\"$dynamicRef\":\"#meta\"},\"if\":{\"$dynami"
    "cRef\":\"#meta\"},\"then\":{\"$dynamicRef\":\"#meta\"},\"else\":{\"$dynamicRef\":\"#me"
    "ta\"},\"allOf\":{\"$ref\":\"#/$defs/schemaArray\"},\"anyOf\":{\"$ref\":\"#/$defs/schem"
    "aArray\"},\"oneOf\":{\"$ref\":\"#/$defs/schemaArray\"},\"not\":{\"$dynamicRef\":\"#met"
    "a\"}},\"$defs\":{\"schemaArray\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"$dyna"
    "micRef\":\"#meta\"}}}}",
    /* https://json-schema.org/draft/2020-12/meta/unevaluated */
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"https://json-s"
    "chema.org/draft/2020-12/meta/unevaluated\",\"$dynamicAnchor\":\"meta\",\"type\":[\"obj"
    "ect\",\"boolean\"],\"properties\":{\"unevaluatedItems\":{\"$dynamicRef\":\"#meta\"},\""
    "unevaluatedProperties\":{\"$dynamicRef\":\"#meta\"}}}",
    /* https://json-schema.org/draft/2020-12/meta/validation */
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"https://json-s"
    "chema.org/draft/2020-12/meta/validation\",\"$dynamicAnchor\":\"meta\",\"type\":[\"obje"
    "ct\",\"boolean\"],\"properties\":{\"type\":{\"anyOf\":[{\"$ref\":\"#/$defs/simpleTypes"
    "\"},{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/simpleTypes\"},\"minItems\":1,\""
    "uniqueItems\":true}]},\"const\":true,\"enum\":{\"type\":\"array\",\"items\":true},\"mu"
    "ltipleOf\":{\"type\":\"number\",\"exclusiveMinimum\":0},\"maximum\":{\"type\":\"number"
    "\"},\"exclusiveMaximum\":{\"type\":\"number\"},\"minimum\":{\"type\":\"number\"},\"exc"
    "lusiveMinimum\":{\"type\":\"number\"},\"maxLength\":{\"$ref\":\"#/$defs/nonNegativeInt"
    "eger\"},\"minLength\":{\"$ref\":\"#/$defs/nonNegativeIntegerDefault0\"},\"pattern\":{\""
    "type\":\"string\",\"format\":\"regex\"},\"maxItems\":{\"$ref\":\"#/$defs/nonNegativeIn"
    "teger\"},\"minItems\":{\"$ref\":\"#/$defs/nonNegativeIntegerDefault0\"},\"uniqueItems\""
    ":{\"type\":\"boolean\"},\"maxContains\":{\"$ref\":\"#/$defs/nonNegativeInteger\"},\"mi"
    "nContains\":{\"$ref\":\"#/$defs/nonNegativeInteger\"},\"maxProperties\":{\"$ref\":\"#/"
    "$defs/nonNegativeInteger\"},\"minProperties\":{\"$ref\":\"#/$defs/nonNegativeIntegerDe"
    "fault0\"},\"required\":{\"$ref\":\"#/$defs/stringArray\"},\"dependentRequired\":{\"typ"
    "e\":\"object\",\"additionalProperties\":{\"$ref\":\"#/$defs/stringArray\"}}},\"$defs\""
    ":{\"nonNegativeInteger\":{\"type\":\"integer\",\"minimum\":0},\"nonNegativeIntegerDefa"
    "ult0\":{\"$ref\":\"#/$defs/nonNegativeInteger\"},\"simpleTypes\":{\"enum\":[\"array\","
    "\"boolean\",\"integer\",\"null\",\"number\",\"object\",\"string\"]},\"stringArray\":{\""
    "type\":\"array\",\"items\":{\"type\":\"string\"},\"uniqueItems\":true}}}",
    /* https://json-schema.org/draft/2020-12/meta/meta-data */
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"https://json-s"
    "chema.org/draft/2020-12/meta/meta-data\",\"$dynamicAnchor\":\"meta\",\"type\":[\"objec"
    "t\",\"boolean\"],\"properties\":{\"title\":{\"type\":\"string\"},\"description\":{\"ty"
    "pe\":\"string\"},\"default\":true,\"deprecated\":{\"type\":\"boolean\"},\"readOnly\":{"
    "\"type\":\"boolean\"},\"writeOnly\":{\"type\":\"boolean\"},\"examples\":{\"type\":\"ar"
    "ray\",\"items\":true}}}",
    /* https://json-schema.org/draft/2020-12/meta/format-annotation */
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"https://json-s"
    "chema.org/draft/2020-12/meta/format-annotation\",\"$dynamicAnchor\":\"meta\",\"type\":"
    "[\"object\",\"boolean\"],\"properties\":{\"format\":{\"type\":\"string\"}}}",
    /* https://json-schema.org/draft/2020-12/meta/content */
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"https://json-s"
    "chema.org/draft/2020-12/meta/content\",\"$dynamicAnchor\":\"meta\",\"type\":[\"object\""
    ",\"boolean\"],\"properties\":{\"contentEncoding\":{\"type\":\"string\"},\"contentMedia"
    "Type\":{\"type\":\"string\"},\"contentSchema\":{\"$dynamicRef\":\"#meta\"}}}",
};

#define PHX_SCHEMA_WHERE 512

/* Compilation state: the registry being filled and where in the schema we are, for messages. */
struct phx_schema_cc {
    struct phx_schema_reg *reg;
    char *err;
    size_t errlen;
    int strict; /* a $ref to an unknown document is an error (not so while filling a set) */
    /* JSON pointer of the schema being compiled, inside its document: PHX_SCHEMA_WHERE bytes
     * of the caller's. Not an array in this struct: gcc 12's -fanalyzer forgets every field of
     * a struct once it is written at a variable index, and then took cc->reg's nodes for leaks. */
    char *where;
    size_t wlen;
};

static int phx_schema_cc_fail(struct phx_schema_cc *cc, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record "#/where/kw: message" and return -1. */
static int phx_schema_cc_fail(struct phx_schema_cc *cc, const char *kw, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    phx_schema_errf(cc->err, cc->errlen, "#%s%s%s: %s", cc->where, kw ? "/" : "", kw ? kw : "",
                    msg);
    return -1;
}

static int phx_schema_cc_oom(struct phx_schema_cc *cc)
{
    return phx_schema_cc_fail(cc, NULL, "out of memory");
}

/* Append one escaped JSON pointer segment to cc->where; returns the length to restore. */
static size_t phx_schema_cc_push(struct phx_schema_cc *cc, const char *seg)
{
    size_t old = cc->wlen;
    struct phx_schema_buf b = {0};
    phx_schema_buf_chr(&b, '/');
    for (const char *p = seg; *p; p++) {
        if (*p == '~')
            phx_schema_buf_str(&b, "~0");
        else if (*p == '/')
            phx_schema_buf_str(&b, "~1");
        else
            phx_schema_buf_chr(&b, *p);
    }
    if (b.p)
        cc->wlen += (size_t)snprintf(cc->where + cc->wlen, PHX_SCHEMA_WHERE - cc->wlen, "%s", b.p);
    if (cc->wlen >= PHX_SCHEMA_WHERE)
        cc->wlen = PHX_SCHEMA_WHERE - 1; /* truncated location: only used in messages */
    free(b.p);
    return old;
}

static void phx_schema_cc_pop(struct phx_schema_cc *cc, size_t old)
{
    cc->wlen = old;
    cc->where[old] = '\0';
}

static struct phx_schema_node *phx_schema_compile(struct phx_schema_cc *cc, json_t *js,
                                                  const char *base, struct phx_schema_res *res);

/* Compile js found at where/seg1[/seg2]. */
static struct phx_schema_node *phx_schema_compile_at(struct phx_schema_cc *cc, json_t *js,
                                                     const char *base, struct phx_schema_res *res,
                                                     const char *seg1, const char *seg2)
{
    size_t old = phx_schema_cc_push(cc, seg1);
    if (seg2)
        phx_schema_cc_push(cc, seg2);
    struct phx_schema_node *n = phx_schema_compile(cc, js, base, res);
    phx_schema_cc_pop(cc, old);
    return n;
}

static int phx_schema_is_integral(double d)
{
    /* every double at or beyond 2^53 is an integer; below, the cast is exact for integers */
    if (d >= 9007199254740992.0 || d <= -9007199254740992.0)
        return 1;
    return d == (double)(long long)d;
}

/* A non-negative integer keyword (1.0 counts); 0 absent or ok, -1 invalid. */
static int phx_schema_cc_count(struct phx_schema_cc *cc, json_t *js, const char *kw, long long *out)
{
    json_t *v = json_object_get(js, kw);
    *out = -1;
    if (!v)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 4e18 &&
        phx_schema_is_integral(json_real_value(v))) {
        *out = (long long)json_real_value(v);
        return 0;
    }
    return phx_schema_cc_fail(cc, kw, "must be a non-negative integer");
}

static int phx_schema_cc_number(struct phx_schema_cc *cc, json_t *js, const char *kw, json_t **out)
{
    *out = json_object_get(js, kw);
    if (*out && !json_is_number(*out))
        return phx_schema_cc_fail(cc, kw, "must be a number");
    return 0;
}

static int phx_schema_cc_sub(struct phx_schema_cc *cc, json_t *js, const char *kw, const char *base,
                             struct phx_schema_res *res, struct phx_schema_node **out)
{
    json_t *v = json_object_get(js, kw);
    *out = NULL;
    if (!v)
        return 0;
    *out = phx_schema_compile_at(cc, v, base, res, kw, NULL);
    return *out ? 0 : -1;
}

/* An array of schemas (allOf, anyOf, oneOf, prefixItems): non-empty. */
static int phx_schema_cc_list(struct phx_schema_cc *cc, json_t *js, const char *kw,
                              const char *base, struct phx_schema_res *res,
                              struct phx_schema_node ***out, size_t *n)
{
    json_t *v = json_object_get(js, kw);
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return phx_schema_cc_fail(cc, kw, "must be a non-empty array of schemas");
    *out = calloc(json_array_size(v), sizeof(**out));
    if (!*out)
        return phx_schema_cc_oom(cc);
    for (size_t i = 0; i < json_array_size(v); i++) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", i);
        (*out)[i] = phx_schema_compile_at(cc, json_array_get(v, i), base, res, kw, idx);
        if (!(*out)[i])
            return -1;
        (*n)++;
    }
    return 0;
}

/* An object of schemas (properties, patternProperties, dependentSchemas, $defs). */
static int phx_schema_cc_map(struct phx_schema_cc *cc, json_t *js, const char *kw, const char *base,
                             struct phx_schema_res *res, json_t **out)
{
    json_t *v = json_object_get(js, kw);
    const char *key;
    json_t *sub;
    if (out)
        *out = v;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return phx_schema_cc_fail(cc, kw, "must be an object of schemas");
    json_object_foreach(v, key, sub)
    {
        if (!phx_schema_compile_at(cc, sub, base, res, kw, key))
            return -1;
    }
    return 0;
}

static int phx_schema_cc_strings(struct phx_schema_cc *cc, json_t *v, const char *kw)
{
    if (!json_is_array(v))
        return phx_schema_cc_fail(cc, kw, "must be an array of strings");
    for (size_t i = 0; i < json_array_size(v); i++) {
        if (!json_is_string(json_array_get(v, i)))
            return phx_schema_cc_fail(cc, kw, "must be an array of strings");
    }
    return 0;
}

static int phx_schema_anchor_valid(const char *s)
{
    if (!phx_schema_is_alpha(s[0]) && s[0] != '_')
        return 0;
    for (const char *p = s + 1; *p; p++) {
        if (!phx_schema_is_alpha(*p) && !phx_schema_is_digit(*p) && !strchr("-_.", *p))
            return 0;
    }
    return 1;
}

static int phx_schema_res_add_anchor(struct phx_schema_cc *cc, struct phx_schema_res *res,
                                     const char *kw, const char *name, struct phx_schema_node *n,
                                     int dynamic)
{
    const struct phx_schema_anchor *a = phx_schema_anchor_find(res, name, strlen(name));
    if (a && a->node != n)
        return phx_schema_cc_fail(cc, kw, "duplicate anchor \"%s\" in %s", name, res->uri);
    if (a) {
        ((struct phx_schema_anchor *)a)->dynamic |= dynamic;
        return 0;
    }
    struct phx_schema_anchor *v = realloc(res->anchors, (res->n_anchors + 1) * sizeof(*v));
    if (!v)
        return phx_schema_cc_oom(cc);
    res->anchors = v;
    char *copy = strdup(name);
    if (!copy)
        return phx_schema_cc_oom(cc);
    /* the entry is written whole, once it is complete (no half-filled anchor on failure) */
    v[res->n_anchors++] = (struct phx_schema_anchor){.name = copy, .node = n, .dynamic = dynamic};
    return 0;
}

/* A new resource named uri (taken over, freed on failure). */
static struct phx_schema_res *phx_schema_res_new(struct phx_schema_cc *cc, char *uri,
                                                 struct phx_schema_node *root)
{
    struct phx_schema_reg *r = cc->reg;
    if (phx_schema_res_find(r, uri, strlen(uri))) {
        phx_schema_cc_fail(cc, NULL, "duplicate $id \"%s\"", uri);
        free(uri);
        return NULL;
    }
    if (r->n_res == r->cap_res) {
        size_t cap = r->cap_res ? r->cap_res * 2 : 16;
        struct phx_schema_res **v = realloc(r->res, cap * sizeof(*v));
        if (!v) {
            free(uri);
            phx_schema_cc_oom(cc);
            return NULL;
        }
        r->res = v;
        r->cap_res = cap;
    }
    struct phx_schema_res *res = calloc(1, sizeof(*res));
    if (!res) {
        free(uri);
        phx_schema_cc_oom(cc);
        return NULL;
    }
    res->uri = uri;
    res->root = root;
    r->res[r->n_res++] = res;
    return res;
}

/* $schema, $id, $anchor, $dynamicAnchor, $ref, $dynamicRef. May switch base and res. */
static int phx_schema_cc_core(struct phx_schema_cc *cc, struct phx_schema_node *n,
                              const char **base, struct phx_schema_res **res)
{
    json_t *js = n->json, *v;
    if ((v = json_object_get(js, "$schema"))) {
        if (!json_is_string(v))
            return phx_schema_cc_fail(cc, "$schema", "must be a string");
        const char *s = json_string_value(v);
        if (strstr(s, "json-schema.org/") && !strstr(s, "/draft/2020-12/"))
            return phx_schema_cc_fail(cc, "$schema", "unsupported dialect \"%s\" (only %s)", s,
                                      PHX_SCHEMA_DIALECT);
    }
    if ((v = json_object_get(js, "$id"))) {
        if (!json_is_string(v))
            return phx_schema_cc_fail(cc, "$id", "must be a string");
        char *uri = phx_schema_uri_resolve(*base, json_string_value(v));
        if (!uri)
            return phx_schema_cc_oom(cc);
        char *hash = strchr(uri, '#');
        if (hash && hash[1]) {
            free(uri);
            return phx_schema_cc_fail(cc, "$id", "must not have a fragment (use $anchor)");
        }
        if (hash)
            *hash = '\0';
        if (!(*res = phx_schema_res_new(cc, uri, n)))
            return -1;
        *base = (*res)->uri;
    } else if (!*res) {
        /* a document root without $id: a resource under the base it was given */
        char *uri = strdup(*base);
        if (!uri)
            return phx_schema_cc_oom(cc);
        if (!(*res = phx_schema_res_new(cc, uri, n)))
            return -1;
    }
    n->res = *res;
    static const char *const anchor_kws[] = {"$anchor", "$dynamicAnchor"};
    for (int k = 0; k < 2; k++) {
        if (!(v = json_object_get(js, anchor_kws[k])))
            continue;
        if (!json_is_string(v) || !phx_schema_anchor_valid(json_string_value(v)))
            return phx_schema_cc_fail(cc, anchor_kws[k],
                                      "must be a name like [A-Za-z_][-A-Za-z0-9._]*");
        if (phx_schema_res_add_anchor(cc, *res, anchor_kws[k], json_string_value(v), n, k) < 0)
            return -1;
    }
    static const char *const ref_kws[] = {"$ref", "$dynamicRef"};
    for (int k = 0; k < 2; k++) {
        if (!(v = json_object_get(js, ref_kws[k])))
            continue;
        if (!json_is_string(v))
            return phx_schema_cc_fail(cc, ref_kws[k], "must be a string");
        char *uri = phx_schema_uri_resolve(*base, json_string_value(v));
        if (!uri)
            return phx_schema_cc_oom(cc);
        if (k == 0)
            n->ref_uri = uri;
        else
            n->dynref_uri = uri;
        if (!n->ref_where && !(n->ref_where = strdup(cc->where)))
            return phx_schema_cc_oom(cc);
    }
    return 0;
}

/* type, enum, const, format. */
static int phx_schema_cc_any(struct phx_schema_cc *cc, struct phx_schema_node *n)
{
    json_t *js = n->json, *v;
    if ((v = json_object_get(js, "type"))) {
        size_t count = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < count; i++) {
            json_t *t = json_is_array(v) ? json_array_get(v, i) : v;
            unsigned bit = 0;
            for (int k = 0; k < 7 && json_is_string(t); k++) {
                if (strcmp(json_string_value(t), phx_schema_type_names[k]) == 0)
                    bit = 1u << k;
            }
            if (!bit || (n->types & bit))
                return phx_schema_cc_fail(cc, "type",
                                          "must be a type name or an array of distinct ones");
            n->types |= bit;
        }
    }
    if ((v = json_object_get(js, "enum"))) {
        if (!json_is_array(v))
            return phx_schema_cc_fail(cc, "enum", "must be an array");
        n->enum_val = v;
    }
    n->const_val = json_object_get(js, "const");
    if ((v = json_object_get(js, "format"))) {
        if (!json_is_string(v))
            return phx_schema_cc_fail(cc, "format", "must be a string");
        for (size_t k = 0; k < sizeof(phx_schema_formats) / sizeof(phx_schema_formats[0]); k++) {
            if (strcmp(json_string_value(v), phx_schema_formats[k].name) == 0)
                n->format = phx_schema_formats[k].fmt;
        }
    }
    return 0;
}

static int phx_schema_cc_pattern(struct phx_schema_cc *cc, const char *kw, json_t *v, regex_t *re)
{
    char why[160];
    if (!json_is_string(v))
        return phx_schema_cc_fail(cc, kw, "must be a string");
    if (phx_schema_rx_compile(cc->reg, re, json_string_value(v), json_string_length(v), why,
                              sizeof(why)) < 0)
        return phx_schema_cc_fail(cc, kw, "pattern \"%s\" not supported: %s", json_string_value(v),
                                  why);
    return 0;
}

/* Numbers and strings. */
static int phx_schema_cc_scalar(struct phx_schema_cc *cc, struct phx_schema_node *n)
{
    json_t *js = n->json, *v;
    if (phx_schema_cc_number(cc, js, "minimum", &n->minimum) < 0 ||
        phx_schema_cc_number(cc, js, "maximum", &n->maximum) < 0 ||
        phx_schema_cc_number(cc, js, "exclusiveMinimum", &n->xminimum) < 0 ||
        phx_schema_cc_number(cc, js, "exclusiveMaximum", &n->xmaximum) < 0 ||
        phx_schema_cc_number(cc, js, "multipleOf", &n->multiple_of) < 0)
        return -1;
    if (n->multiple_of && !(json_number_value(n->multiple_of) > 0))
        return phx_schema_cc_fail(cc, "multipleOf", "must be greater than 0");
    if (phx_schema_cc_count(cc, js, "minLength", &n->min_length) < 0 ||
        phx_schema_cc_count(cc, js, "maxLength", &n->max_length) < 0)
        return -1;
    if ((v = json_object_get(js, "pattern"))) {
        n->pattern = calloc(1, sizeof(*n->pattern));
        if (!n->pattern)
            return phx_schema_cc_oom(cc);
        if (phx_schema_cc_pattern(cc, "pattern", v, n->pattern) < 0) {
            free(n->pattern);
            n->pattern = NULL;
            return -1;
        }
        n->pattern_src = json_string_value(v);
        n->fast = phx_schema_fast_compile(json_string_value(v), json_string_length(v));
        /* One atom ("^[A-Za-z0-9._:-]{1,128}$", the shape of most of our ids) is answered by
         * the fast matcher alone: it cannot backtrack, so its budget never runs out
         * (phx_schema_fast_at) and the regex would only be memory. glibc expands {1,128} into
         * 128 copies and keeps their closures: 340 KB for that pattern, 1.1 MB for {1,249},
         * about 2.7 MB of a pool's 4 MB idle heap (massif). It was compiled all the same, so a
         * pattern regcomp refuses still fails the schema. */
        if (n->fast && n->fast->n == 1) {
            regfree(n->pattern);
            free(n->pattern);
            n->pattern = NULL;
        }
    }
    return 0;
}

static int phx_schema_cc_array(struct phx_schema_cc *cc, struct phx_schema_node *n,
                               const char *base, struct phx_schema_res *res)
{
    json_t *js = n->json, *v;
    if (phx_schema_cc_count(cc, js, "minItems", &n->min_items) < 0 ||
        phx_schema_cc_count(cc, js, "maxItems", &n->max_items) < 0 ||
        phx_schema_cc_count(cc, js, "minContains", &n->min_contains) < 0 ||
        phx_schema_cc_count(cc, js, "maxContains", &n->max_contains) < 0)
        return -1;
    if ((v = json_object_get(js, "uniqueItems"))) {
        if (!json_is_boolean(v))
            return phx_schema_cc_fail(cc, "uniqueItems", "must be a boolean");
        n->unique_items = json_is_true(v);
    }
    if ((v = json_object_get(js, "items")) && json_is_array(v))
        return phx_schema_cc_fail(cc, "items",
                                  "must be a schema (draft 2020-12: use prefixItems for tuples)");
    if (phx_schema_cc_list(cc, js, "prefixItems", base, res, &n->prefix, &n->n_prefix) < 0 ||
        phx_schema_cc_sub(cc, js, "items", base, res, &n->items) < 0 ||
        phx_schema_cc_sub(cc, js, "contains", base, res, &n->contains) < 0 ||
        phx_schema_cc_sub(cc, js, "unevaluatedItems", base, res, &n->unevaluated_items) < 0)
        return -1;
    return 0;
}

static int phx_schema_cc_object(struct phx_schema_cc *cc, struct phx_schema_node *n,
                                const char *base, struct phx_schema_res *res)
{
    json_t *js = n->json, *v;
    if (phx_schema_cc_count(cc, js, "minProperties", &n->min_props) < 0 ||
        phx_schema_cc_count(cc, js, "maxProperties", &n->max_props) < 0)
        return -1;
    if ((v = json_object_get(js, "required"))) {
        if (phx_schema_cc_strings(cc, v, "required") < 0)
            return -1;
        n->required = v;
    }
    if ((v = json_object_get(js, "dependentRequired"))) {
        const char *key;
        json_t *list;
        if (!json_is_object(v))
            return phx_schema_cc_fail(cc, "dependentRequired", "must be an object of arrays");
        json_object_foreach(v, key, list)
        {
            if (phx_schema_cc_strings(cc, list, "dependentRequired") < 0)
                return -1;
        }
        n->dep_required = v;
    }
    if (phx_schema_cc_map(cc, js, "properties", base, res, &n->properties) < 0 ||
        phx_schema_cc_map(cc, js, "dependentSchemas", base, res, &n->dep_schemas) < 0 ||
        phx_schema_cc_sub(cc, js, "additionalProperties", base, res, &n->additional) < 0 ||
        phx_schema_cc_sub(cc, js, "propertyNames", base, res, &n->property_names) < 0 ||
        phx_schema_cc_sub(cc, js, "unevaluatedProperties", base, res, &n->unevaluated_props) < 0)
        return -1;
    if ((v = json_object_get(js, "patternProperties"))) {
        const char *key;
        json_t *sub;
        if (phx_schema_cc_map(cc, js, "patternProperties", base, res, NULL) < 0)
            return -1;
        n->pats = calloc(json_object_size(v) + 1, sizeof(*n->pats));
        if (!n->pats)
            return phx_schema_cc_oom(cc);
        json_object_foreach(v, key, sub)
        {
            struct phx_schema_pat *p = &n->pats[n->n_pats];
            json_t *name = json_string(key);
            size_t old = phx_schema_cc_push(cc, "patternProperties");
            int rc = name ? phx_schema_cc_pattern(cc, key, name, &p->re) : phx_schema_cc_oom(cc);
            phx_schema_cc_pop(cc, old);
            json_decref(name);
            if (rc < 0)
                return -1;
            p->src = key;
            p->node = phx_schema_map_get(cc->reg, sub);
            n->n_pats++;
        }
    }
    n->has_unevaluated = n->unevaluated_props || n->unevaluated_items;
    return 0;
}

static int phx_schema_cc_logic(struct phx_schema_cc *cc, struct phx_schema_node *n,
                               const char *base, struct phx_schema_res *res)
{
    json_t *js = n->json;
    if (phx_schema_cc_list(cc, js, "allOf", base, res, &n->all_of, &n->n_all_of) < 0 ||
        phx_schema_cc_list(cc, js, "anyOf", base, res, &n->any_of, &n->n_any_of) < 0 ||
        phx_schema_cc_list(cc, js, "oneOf", base, res, &n->one_of, &n->n_one_of) < 0 ||
        phx_schema_cc_sub(cc, js, "not", base, res, &n->not_) < 0 ||
        phx_schema_cc_sub(cc, js, "if", base, res, &n->if_) < 0 ||
        phx_schema_cc_sub(cc, js, "then", base, res, &n->then_) < 0 ||
        phx_schema_cc_sub(cc, js, "else", base, res, &n->else_) < 0)
        return -1;
    return 0;
}

/* Compile one schema value. res is the enclosing resource, NULL for a document root. A value
 * compiled before (a $ref target reached again, or the same JSON shared twice) is reused. */
static struct phx_schema_node *phx_schema_compile(struct phx_schema_cc *cc, json_t *js,
                                                  const char *base, struct phx_schema_res *res)
{
    struct phx_schema_node *n = phx_schema_map_get(cc->reg, js);
    if (n)
        return n;
    if (!json_is_object(js) && !json_is_boolean(js)) {
        phx_schema_cc_fail(cc, NULL, "a schema must be an object or a boolean");
        return NULL;
    }
    if (!(n = phx_schema_node_new(cc->reg, js))) {
        phx_schema_cc_oom(cc);
        return NULL;
    }
    if (json_is_boolean(js)) {
        n->boolean = json_is_true(js);
        if (!res) {
            /* a document that is just true or false is still a resource others can refer to */
            char *uri = strdup(base);
            if (!uri) {
                phx_schema_cc_oom(cc);
                return NULL;
            }
            if (!(res = phx_schema_res_new(cc, uri, n)))
                return NULL;
        }
        n->res = res;
        return n;
    }
    if (phx_schema_cc_core(cc, n, &base, &res) < 0 ||
        phx_schema_cc_map(cc, js, "$defs", base, res, NULL) < 0 || phx_schema_cc_any(cc, n) < 0 ||
        phx_schema_cc_scalar(cc, n) < 0 || phx_schema_cc_array(cc, n, base, res) < 0 ||
        phx_schema_cc_object(cc, n, base, res) < 0 || phx_schema_cc_logic(cc, n, base, res) < 0)
        return NULL;
    return n;
}

/* --- linking ------------------------------------------------------------------------------ */

/* Undo %XX escapes (fragments are URI-encoded JSON pointers or anchor names). */
static char *phx_schema_pct_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && phx_schema_is_xdigit(s[i + 1]) &&
            phx_schema_is_xdigit(s[i + 2])) {
            *o++ = (char)(phx_schema_xval(s[i + 1]) * 16 + phx_schema_xval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* Follow a JSON pointer ("" or "/a/b~1c/0") from root; NULL when it leads nowhere. */
static json_t *phx_schema_pointer(json_t *root, const char *ptr)
{
    json_t *cur = root;
    if (*ptr == '\0')
        return cur;
    if (*ptr != '/')
        return NULL;
    char tok[512];
    while (*ptr == '/' && cur) {
        size_t n = 0;
        for (ptr++; *ptr && *ptr != '/'; ptr++) {
            char c = *ptr;
            if (c == '~' && (ptr[1] == '0' || ptr[1] == '1'))
                c = *++ptr == '0' ? '~' : '/';
            if (n + 1 >= sizeof(tok))
                return NULL;
            tok[n++] = c;
        }
        tok[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, tok, n);
        } else if (json_is_array(cur)) {
            char *end;
            if (n == 0 || (n > 1 && tok[0] == '0') || !phx_schema_is_digit(tok[0]))
                return NULL;
            unsigned long idx = strtoul(tok, &end, 10);
            cur = *end ? NULL : json_array_get(cur, idx);
        } else {
            return NULL;
        }
    }
    return cur;
}

static int phx_schema_load_meta(struct phx_schema_cc *cc);

/* Find the node an absolute URI names. 0 found, 1 its document is unknown, -1 error. */
static int phx_schema_lookup(struct phx_schema_cc *cc, const char *kw, const char *uri,
                             struct phx_schema_node **out, const struct phx_schema_anchor **anchor)
{
    const char *hash = strchr(uri, '#');
    size_t doclen = hash ? (size_t)(hash - uri) : strlen(uri);
    struct phx_schema_res *res = phx_schema_res_find(cc->reg, uri, doclen);
    *anchor = NULL;
    if (!res && strncmp(uri, PHX_SCHEMA_META_PREFIX, strlen(PHX_SCHEMA_META_PREFIX)) == 0 &&
        !phx_schema_res_find(cc->reg, PHX_SCHEMA_DIALECT, strlen(PHX_SCHEMA_DIALECT))) {
        if (phx_schema_load_meta(cc) < 0)
            return -1;
        res = phx_schema_res_find(cc->reg, uri, doclen);
    }
    if (!res)
        return 1;
    char *frag = hash ? phx_schema_pct_decode(hash + 1, strlen(hash + 1)) : strdup("");
    if (!frag)
        return phx_schema_cc_oom(cc);
    int rc = 0;
    if (frag[0] == '\0') {
        *out = res->root;
    } else if (frag[0] == '/') {
        json_t *target = phx_schema_pointer(res->root->json, frag);
        *out = target ? phx_schema_map_get(cc->reg, target) : NULL;
        if (target && !*out) {
            /* a pointer into a place we did not compile, e.g. an unknown "definitions" */
            size_t old = phx_schema_cc_push(cc, kw);
            *out = phx_schema_compile(cc, target, res->uri, res);
            phx_schema_cc_pop(cc, old);
            if (!*out)
                rc = -1;
        } else if (!target) {
            rc = phx_schema_cc_fail(cc, kw, "\"%s\": no such location in %s", uri, res->uri);
        }
    } else {
        *anchor = phx_schema_anchor_find(res, frag, strlen(frag));
        if (*anchor)
            *out = (*anchor)->node;
        else
            rc = phx_schema_cc_fail(cc, kw, "\"%s\": no anchor \"%s\" in %s", uri, frag, res->uri);
    }
    free(frag);
    return rc;
}

/* Resolve every $ref and $dynamicRef not resolved yet, including those of nodes compiled on
 * the way (lazily compiled targets, the bundled meta-schema). */
static int phx_schema_link(struct phx_schema_cc *cc)
{
    struct phx_schema_reg *r = cc->reg;
    for (size_t i = 0; i < r->n_nodes; i++) {
        struct phx_schema_node *n = r->nodes[i];
        const struct phx_schema_anchor *anchor;
        int rc;
        if ((!n->ref_uri || n->ref) && (!n->dynref_uri || n->dynref))
            continue;
        snprintf(cc->where, PHX_SCHEMA_WHERE, "%s", n->ref_where ? n->ref_where : "");
        cc->wlen = strlen(cc->where);
        if (n->ref_uri && !n->ref) {
            rc = phx_schema_lookup(cc, "$ref", n->ref_uri, &n->ref, &anchor);
            if (rc < 0)
                return -1;
            if (rc > 0 && cc->strict)
                return phx_schema_cc_fail(cc, "$ref",
                                          "unresolvable $ref \"%s\" (remote references are not "
                                          "supported)",
                                          n->ref_uri);
        }
        if (n->dynref_uri && !n->dynref) {
            rc = phx_schema_lookup(cc, "$dynamicRef", n->dynref_uri, &n->dynref, &anchor);
            if (rc < 0)
                return -1;
            if (rc > 0 && cc->strict)
                return phx_schema_cc_fail(cc, "$dynamicRef",
                                          "unresolvable $dynamicRef \"%s\" (remote references are "
                                          "not supported)",
                                          n->dynref_uri);
            if (rc == 0 && anchor && anchor->dynamic)
                n->dynref_name = anchor->name;
        }
    }
    return 0;
}

/* Compile one document into cc->reg under base (used when it has no $id). */
static struct phx_schema_node *phx_schema_add_doc(struct phx_schema_cc *cc, json_t *root,
                                                  const char *base)
{
    if (json_array_append(cc->reg->docs, root) < 0) {
        phx_schema_cc_oom(cc);
        return NULL;
    }
    cc->wlen = 0;
    cc->where[0] = '\0';
    return phx_schema_compile(cc, root, base, NULL);
}

static int phx_schema_load_meta(struct phx_schema_cc *cc)
{
    for (size_t i = 0; i < sizeof(phx_schema_meta_docs) / sizeof(phx_schema_meta_docs[0]); i++) {
        json_error_t jerr;
        json_t *doc = json_loads(phx_schema_meta_docs[i], 0, &jerr);
        if (!doc)
            return phx_schema_cc_fail(cc, NULL, "bundled meta-schema: %s", jerr.text);
        struct phx_schema_node *n = phx_schema_add_doc(cc, doc, PHX_SCHEMA_META_PREFIX);
        json_decref(doc);
        if (!n)
            return -1;
    }
    return 0;
}

/* --- evaluation --------------------------------------------------------------------------- */

/* Instance location as a linked list up the C stack; rendered only when an error is kept. */
struct phx_schema_path {
    const struct phx_schema_path *up;
    const char *key; /* NULL for an array index */
    size_t key_len, index;
};

/* Dynamic scope: the schema resources entered so far, innermost first ($dynamicRef). */
struct phx_schema_scope {
    const struct phx_schema_scope *up;
    const struct phx_schema_res *res;
};

/* Which members (properties or items) of the current instance have been evaluated. */
struct phx_schema_ann {
    size_t n;
    uint64_t inl;
    uint64_t *bits; /* NULL while n <= 64: inl holds the bits */
};

/* One validate call. Nothing here is shared between calls, so validation is reentrant. */
struct phx_schema_run {
    const struct phx_schema_reg *reg;
    json_t *errors; /* NULL when the caller does not want them */
    int depth;
    int oom;
    const json_t *root; /* the instance validated */
    size_t budget;      /* schema evaluations left (PHX_SCHEMA_MAX_EVALS) */
    int extended;       /* the budget has grown with the instance's size */
    int exhausted;
};

/* How many JSON values v holds (itself included). */
static size_t phx_schema_count_values(const json_t *v)
{
    size_t n = 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) n += phx_schema_count_values(x);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) n += phx_schema_count_values(x);
    }
    return n;
}

/* Take one evaluation from the budget: 0, or -1 once it is spent. Depth bounds recursion, not
 * breadth: anyOf/oneOf/allOf over $refs that branch again evaluate 2^depth times on the same
 * value (a 2.5 KB schema of 40 such levels ran for hours: fuzz_schema). The base budget covers
 * any schema on a small instance; a large instance earns PHX_SCHEMA_EVALS_PER_VALUE more per
 * value, counted only when the base runs out, so the common case pays nothing. */
static int phx_schema_spend(struct phx_schema_run *run)
{
    if (run->budget == 0 && !run->extended) {
        run->extended = 1;
        run->budget = PHX_SCHEMA_EVALS_PER_VALUE * phx_schema_count_values(run->root);
    }
    if (run->budget == 0) {
        run->exhausted = 1;
        return -1;
    }
    run->budget--;
    return 0;
}

struct phx_schema_frame {
    const json_t *inst;
    const struct phx_schema_path *path;
    const struct phx_schema_scope *scope;
    struct phx_schema_ann *ann; /* the caller's annotations for inst, or NULL */
    int report;                 /* 0 inside anyOf/oneOf/not/if/contains: failures are expected */
};

static int phx_schema_ann_init(struct phx_schema_ann *a, const json_t *inst)
{
    a->n = json_is_object(inst) ? json_object_size(inst) : json_array_size(inst);
    a->inl = 0;
    a->bits = NULL;
    if (a->n > 64 && !(a->bits = calloc((a->n + 63) / 64, sizeof(uint64_t))))
        return -1;
    return 0;
}

static uint64_t *phx_schema_ann_words(struct phx_schema_ann *a)
{
    return a->bits ? a->bits : &a->inl;
}

static void phx_schema_ann_set(struct phx_schema_ann *a, size_t i)
{
    if (a && i < a->n)
        phx_schema_ann_words(a)[i / 64] |= 1ULL << (i % 64);
}

static int phx_schema_ann_get(struct phx_schema_ann *a, size_t i)
{
    return (phx_schema_ann_words(a)[i / 64] >> (i % 64)) & 1;
}

static void phx_schema_ann_merge(struct phx_schema_ann *dst, struct phx_schema_ann *src)
{
    uint64_t *d = phx_schema_ann_words(dst), *s = phx_schema_ann_words(src);
    for (size_t w = 0; w < (src->n + 63) / 64; w++)
        d[w] |= s[w];
}

/* True when evaluation may stop at the first failure: nobody wants more errors. */
static int phx_schema_stop(const struct phx_schema_run *run, const struct phx_schema_frame *f)
{
    return !f->report || !run->errors || run->oom ||
           json_array_size(run->errors) >= PHX_SCHEMA_MAX_ERRORS;
}

static void phx_schema_path_render(struct phx_schema_buf *b, const struct phx_schema_path *p)
{
    if (!p)
        return;
    phx_schema_path_render(b, p->up);
    phx_schema_buf_chr(b, '/');
    if (!p->key) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", p->index);
        phx_schema_buf_str(b, idx);
        return;
    }
    for (size_t i = 0; i < p->key_len; i++) {
        if (p->key[i] == '~')
            phx_schema_buf_str(b, "~0");
        else if (p->key[i] == '/')
            phx_schema_buf_str(b, "~1");
        else
            phx_schema_buf_chr(b, p->key[i]);
    }
}

static void phx_schema_fail(struct phx_schema_run *run, const struct phx_schema_frame *f,
                            const struct phx_schema_path *path, const char *kw, const char *fmt,
                            ...) __attribute__((format(printf, 5, 6)));

/* Record one error at path (usually f->path) when f reports and there is room. */
static void phx_schema_fail(struct phx_schema_run *run, const struct phx_schema_frame *f,
                            const struct phx_schema_path *path, const char *kw, const char *fmt,
                            ...)
{
    if (!f->report || !run->errors || json_array_size(run->errors) >= PHX_SCHEMA_MAX_ERRORS)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct phx_schema_buf b = {0};
    phx_schema_path_render(&b, path);
    char *ptr = phx_schema_buf_take(&b);
    /* messages quote instance and schema text; never let a cut UTF-8 sequence lose the error */
    json_t *m = json_string(msg);
    json_t *e = json_pack("{s:s?, s:s, s:o?}", "path", ptr, "keyword", kw, "message",
                          m ? m : json_string("(message not valid UTF-8)"));
    if (!ptr || !e || json_array_append_new(run->errors, e) < 0)
        run->oom = 1;
    free(ptr);
}

static const char *phx_schema_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return phx_schema_is_integral(json_real_value(v)) ? "integer" : "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static unsigned phx_schema_type_bits(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return PHX_SCHEMA_T_OBJECT;
    case JSON_ARRAY:
        return PHX_SCHEMA_T_ARRAY;
    case JSON_STRING:
        return PHX_SCHEMA_T_STRING;
    case JSON_INTEGER:
        return PHX_SCHEMA_T_INTEGER | PHX_SCHEMA_T_NUMBER;
    case JSON_REAL:
        return phx_schema_is_integral(json_real_value(v))
                   ? PHX_SCHEMA_T_INTEGER | PHX_SCHEMA_T_NUMBER
                   : PHX_SCHEMA_T_NUMBER;
    case JSON_TRUE:
    case JSON_FALSE:
        return PHX_SCHEMA_T_BOOLEAN;
    default:
        return PHX_SCHEMA_T_NULL;
    }
}

/* Compare two numbers mathematically. long double holds every int64 and every double exactly
 * on the platforms Phoenix runs on (x86-64 80-bit, aarch64 128-bit). */
static int phx_schema_num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    long double x = json_is_integer(a) ? (long double)json_integer_value(a) : json_real_value(a);
    long double y = json_is_integer(b) ? (long double)json_integer_value(b) : json_real_value(b);
    return x < y ? -1 : x > y;
}

/* JSON equality with numbers compared by value, as enum, const and uniqueItems require. */
static int phx_schema_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return phx_schema_num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!phx_schema_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        }
        return 1;
    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b))
            return 0;
        for (void *it = json_object_iter((json_t *)a); it;
             it = json_object_iter_next((json_t *)a, it)) {
            json_t *o = json_object_getn(b, json_object_iter_key(it), json_object_iter_key_len(it));
            if (!o || !phx_schema_equal(json_object_iter_value(it), o))
                return 0;
        }
        return 1;
    default:
        return 1; /* true, false, null */
    }
}

static uint64_t phx_schema_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

/* A hash consistent with phx_schema_equal (1 and 1.0 hash alike; key order does not count). */
static uint64_t phx_schema_hash(const json_t *v)
{
    uint64_t h;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        return phx_schema_mix((uint64_t)json_integer_value(v));
    case JSON_REAL: {
        double d = json_real_value(v);
        if (d > -9.2e18 && d < 9.2e18 && phx_schema_is_integral(d))
            return phx_schema_mix((uint64_t)(long long)d);
        memcpy(&h, &d, sizeof(h));
        return phx_schema_mix(h ^ 0x5bd1e995);
    }
    case JSON_STRING:
        return phx_schema_mix(
            phx_fnv64(PHX_FNV64_SEED, json_string_value(v), json_string_length(v)));
    case JSON_ARRAY:
        h = 0xa5a5;
        for (size_t i = 0; i < json_array_size(v); i++)
            h = phx_schema_mix(h * 31 + phx_schema_hash(json_array_get(v, i)));
        return h;
    case JSON_OBJECT:
        h = 0x0b1ec7;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            const char *k = json_object_iter_key(it);
            uint64_t kh = phx_fnv64(PHX_FNV64_SEED, k, json_object_iter_key_len(it));
            h += phx_schema_mix(kh ^ phx_schema_hash(json_object_iter_value(it)));
        }
        return h;
    case JSON_TRUE:
        return 0x7472756;
    case JSON_FALSE:
        return 0x66616c7;
    default:
        return 0x6e756c6;
    }
}

struct phx_schema_hidx {
    uint64_t h;
    size_t i;
};

static int phx_schema_hidx_cmp(const void *a, const void *b)
{
    const struct phx_schema_hidx *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Find two equal items in O(n log n): sort by hash, compare only within equal-hash runs.
 * 1 and the pair's indexes when found, 0 when all are distinct, -1 out of memory. */
static int phx_schema_find_dup(const json_t *arr, size_t *first, size_t *second)
{
    size_t n = json_array_size(arr);
    if (n < 2)
        return 0;
    struct phx_schema_hidx *v = malloc(n * sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        v[i].h = phx_schema_hash(json_array_get(arr, i));
        v[i].i = i;
    }
    qsort(v, n, sizeof(*v), phx_schema_hidx_cmp);
    int found = 0;
    for (size_t a = 0; a < n && !found; a++) {
        for (size_t b = a + 1; b < n && v[b].h == v[a].h && !found; b++) {
            if (phx_schema_equal(json_array_get(arr, v[a].i), json_array_get(arr, v[b].i))) {
                *first = v[a].i < v[b].i ? v[a].i : v[b].i;
                *second = v[a].i < v[b].i ? v[b].i : v[a].i;
                found = 1;
            }
        }
    }
    free(v);
    return found;
}

static int phx_schema_eval(struct phx_schema_run *run, const struct phx_schema_node *n,
                           const struct phx_schema_frame *f, const char *via);

/* Evaluate n against a member of f->inst: a new instance, so no annotations flow back. */
static int phx_schema_eval_member(struct phx_schema_run *run, const struct phx_schema_node *n,
                                  const struct phx_schema_frame *f, const json_t *member,
                                  const struct phx_schema_path *path, int report, const char *via)
{
    struct phx_schema_frame cf = {member, path, f->scope, NULL, report && f->report};
    return phx_schema_eval(run, n, &cf, via);
}

/* Evaluate n against the same instance (allOf, $ref, ...); it merges its annotations into
 * f->ann on success. report=0 for applicators whose subschemas may legitimately fail. */
static int phx_schema_eval_same(struct phx_schema_run *run, const struct phx_schema_node *n,
                                const struct phx_schema_frame *f, int report, int annotate,
                                const char *via)
{
    struct phx_schema_frame cf = *f;
    cf.report = report && f->report;
    if (!annotate)
        cf.ann = NULL;
    return phx_schema_eval(run, n, &cf, via);
}

/* The schema a $dynamicRef lands on: its static target, unless that target is a
 * $dynamicAnchor, in which case the outermost resource in the dynamic scope that has a
 * $dynamicAnchor of the same name wins. */
static const struct phx_schema_node *phx_schema_dynamic_target(const struct phx_schema_node *n,
                                                               const struct phx_schema_frame *f)
{
    const struct phx_schema_node *target = n->dynref;
    if (!n->dynref_name)
        return target;
    size_t len = strlen(n->dynref_name);
    for (const struct phx_schema_scope *s = f->scope; s; s = s->up) {
        const struct phx_schema_anchor *a = phx_schema_anchor_find(s->res, n->dynref_name, len);
        if (a && a->dynamic)
            target = a->node;
    }
    return target;
}

static int phx_schema_eval_refs(struct phx_schema_run *run, const struct phx_schema_node *n,
                                const struct phx_schema_frame *f)
{
    int bad = 0;
    if (n->ref_uri) {
        if (!n->ref) {
            phx_schema_fail(run, f, f->path, "$ref", "unresolved reference \"%s\"", n->ref_uri);
            bad = 1;
        } else {
            bad = phx_schema_eval_same(run, n->ref, f, 1, 1, "$ref");
        }
        if (bad && phx_schema_stop(run, f))
            return 1;
    }
    if (n->dynref_uri) {
        const struct phx_schema_node *t = phx_schema_dynamic_target(n, f);
        if (!t) {
            phx_schema_fail(run, f, f->path, "$dynamicRef", "unresolved reference \"%s\"",
                            n->dynref_uri);
            return 1;
        }
        bad |= phx_schema_eval_same(run, t, f, 1, 1, "$dynamicRef");
    }
    return bad;
}

/* Render a number from the schema for a message. */
static void phx_schema_num_str(const json_t *v, char *out, size_t len)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY);
    snprintf(out, len, "%s", s ? s : "?");
    free(s);
}

static int phx_schema_eval_generic(struct phx_schema_run *run, const struct phx_schema_node *n,
                                   const struct phx_schema_frame *f)
{
    int bad = 0;
    if (n->types && !(n->types & phx_schema_type_bits(f->inst))) {
        char want[96] = "";
        for (int k = 0; k < 7; k++) {
            if (n->types & (1u << k)) {
                size_t l = strlen(want);
                snprintf(want + l, sizeof(want) - l, "%s%s", l ? " or " : "",
                         phx_schema_type_names[k]);
            }
        }
        phx_schema_fail(run, f, f->path, "type", "expected %s, got %s", want,
                        phx_schema_type_name(f->inst));
        bad = 1;
        if (phx_schema_stop(run, f))
            return 1;
    }
    if (n->const_val && !phx_schema_equal(n->const_val, f->inst)) {
        phx_schema_fail(run, f, f->path, "const", "value does not equal the required constant");
        bad = 1;
        if (phx_schema_stop(run, f))
            return 1;
    }
    if (n->enum_val) {
        size_t i;
        for (i = 0; i < json_array_size(n->enum_val); i++) {
            if (phx_schema_equal(json_array_get(n->enum_val, i), f->inst))
                break;
        }
        if (i == json_array_size(n->enum_val)) {
            phx_schema_fail(run, f, f->path, "enum", "value is not one of the %zu allowed values",
                            json_array_size(n->enum_val));
            bad = 1;
        }
    }
    return bad;
}

/* x is a multiple of m: exact for integers, within rounding noise for reals (0.0075 is a
 * multiple of 0.0001 even though the binary quotient is 75.00000000000001). */
static int phx_schema_multiple(const json_t *x, const json_t *m)
{
    if (json_is_integer(x) && json_is_integer(m)) {
        json_int_t d = json_integer_value(m);
        return d == -1 || json_integer_value(x) % d == 0;
    }
    double q = json_number_value(x) / json_number_value(m);
    if (q != q || q > 1.7e308 || q < -1.7e308)
        return 0; /* overflow: cannot be decided, treat as not a multiple */
    if (phx_schema_is_integral(q))
        return 1;
    double r = (double)(long long)(q + (q < 0 ? -0.5 : 0.5));
    double diff = q - r < 0 ? r - q : q - r;
    return diff < 1e-9;
}

static int phx_schema_eval_number(struct phx_schema_run *run, const struct phx_schema_node *n,
                                  const struct phx_schema_frame *f)
{
    const json_t *x = f->inst;
    char lim[64];
    int bad = 0;
    if (!json_is_number(x))
        return 0;
    static const struct {
        size_t off;
        const char *kw, *op;
        int fail_when; /* the sign of cmp(x, limit) that fails */
        int fail_eq;   /* equality fails too (the exclusive bounds) */
    } checks[] = {
        {offsetof(struct phx_schema_node, minimum), "minimum", ">=", -1, 0},
        {offsetof(struct phx_schema_node, maximum), "maximum", "<=", 1, 0},
        {offsetof(struct phx_schema_node, xminimum), "exclusiveMinimum", ">", -1, 1},
        {offsetof(struct phx_schema_node, xmaximum), "exclusiveMaximum", "<", 1, 1},
    };
    for (size_t k = 0; k < sizeof(checks) / sizeof(checks[0]); k++) {
        const json_t *limit = *(json_t *const *)((const char *)n + checks[k].off);
        if (!limit)
            continue;
        int c = phx_schema_num_cmp(x, limit);
        if (c == checks[k].fail_when || (c == 0 && checks[k].fail_eq)) {
            phx_schema_num_str(limit, lim, sizeof(lim));
            phx_schema_fail(run, f, f->path, checks[k].kw, "must be %s %s", checks[k].op, lim);
            bad = 1;
            if (phx_schema_stop(run, f))
                return 1;
        }
    }
    if (n->multiple_of && !phx_schema_multiple(x, n->multiple_of)) {
        phx_schema_num_str(n->multiple_of, lim, sizeof(lim));
        phx_schema_fail(run, f, f->path, "multipleOf", "must be a multiple of %s", lim);
        bad = 1;
    }
    return bad;
}

static size_t phx_schema_codepoints(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

static int phx_schema_eval_string(struct phx_schema_run *run, const struct phx_schema_node *n,
                                  const struct phx_schema_frame *f)
{
    if (!json_is_string(f->inst))
        return 0;
    const char *s = json_string_value(f->inst);
    size_t len = json_string_length(f->inst);
    int bad = 0;
    if (n->min_length >= 0 || n->max_length >= 0) {
        size_t cps = phx_schema_codepoints(s, len);
        if (n->min_length >= 0 && cps < (size_t)n->min_length) {
            phx_schema_fail(run, f, f->path, "minLength",
                            "must be at least %lld characters long, is %zu", n->min_length, cps);
            bad = 1;
        }
        if (n->max_length >= 0 && cps > (size_t)n->max_length) {
            phx_schema_fail(run, f, f->path, "maxLength",
                            "must be at most %lld characters long, is %zu", n->max_length, cps);
            bad = 1;
        }
        if (bad && phx_schema_stop(run, f))
            return 1;
    }
    if (n->pattern_src && !(n->fast ? phx_schema_fast_match(run->reg, n->fast, n->pattern, s, len)
                                    : phx_schema_rx_match(run->reg, n->pattern, s, len))) {
        phx_schema_fail(run, f, f->path, "pattern", "does not match the pattern \"%s\"",
                        n->pattern_src);
        bad = 1;
        if (phx_schema_stop(run, f))
            return 1;
    }
    if (n->format != PHX_SCHEMA_F_NONE) {
        for (size_t k = 0; k < sizeof(phx_schema_formats) / sizeof(phx_schema_formats[0]); k++) {
            if (phx_schema_formats[k].fmt == n->format && !phx_schema_formats[k].check(s, len)) {
                phx_schema_fail(run, f, f->path, "format", "is not a valid %s",
                                phx_schema_formats[k].name);
                bad = 1;
            }
        }
    }
    return bad;
}

static int phx_schema_eval_array(struct phx_schema_run *run, const struct phx_schema_node *n,
                                 const struct phx_schema_frame *f)
{
    if (!json_is_array(f->inst))
        return 0;
    size_t size = json_array_size(f->inst);
    int bad = 0;
    if (n->min_items >= 0 && size < (size_t)n->min_items) {
        phx_schema_fail(run, f, f->path, "minItems", "must have at least %lld items, has %zu",
                        n->min_items, size);
        bad = 1;
    }
    if (n->max_items >= 0 && size > (size_t)n->max_items) {
        phx_schema_fail(run, f, f->path, "maxItems", "must have at most %lld items, has %zu",
                        n->max_items, size);
        bad = 1;
    }
    if (bad && phx_schema_stop(run, f))
        return 1;
    if (n->unique_items) {
        size_t a = 0, b = 0;
        int rc = phx_schema_find_dup(f->inst, &a, &b);
        if (rc < 0)
            run->oom = 1;
        if (rc) {
            phx_schema_fail(run, f, f->path, "uniqueItems", "items %zu and %zu are equal", a, b);
            bad = 1;
            if (phx_schema_stop(run, f))
                return 1;
        }
    }
    for (size_t i = 0; i < size && (n->n_prefix || n->items); i++) {
        struct phx_schema_path p = {f->path, NULL, 0, i};
        const struct phx_schema_node *sub = i < n->n_prefix ? n->prefix[i] : n->items;
        if (!sub)
            break;
        if (phx_schema_eval_member(run, sub, f, json_array_get(f->inst, i), &p, 1,
                                   i < n->n_prefix ? "prefixItems" : "items")) {
            bad = 1;
            if (phx_schema_stop(run, f))
                return 1;
        }
        phx_schema_ann_set(f->ann, i);
    }
    if (n->contains) {
        size_t matches = 0;
        for (size_t i = 0; i < size; i++) {
            struct phx_schema_path p = {f->path, NULL, 0, i};
            if (!phx_schema_eval_member(run, n->contains, f, json_array_get(f->inst, i), &p, 0,
                                        "contains")) {
                matches++;
                phx_schema_ann_set(f->ann, i);
            }
        }
        long long min = n->min_contains >= 0 ? n->min_contains : 1;
        if (matches < (size_t)min) {
            phx_schema_fail(run, f, f->path, n->min_contains >= 0 ? "minContains" : "contains",
                            "must contain at least %lld matching items, has %zu", min, matches);
            bad = 1;
        }
        if (n->max_contains >= 0 && matches > (size_t)n->max_contains) {
            phx_schema_fail(run, f, f->path, "maxContains",
                            "must contain at most %lld matching items, has %zu", n->max_contains,
                            matches);
            bad = 1;
        }
    }
    return bad;
}

/* properties, patternProperties, additionalProperties, propertyNames: one pass over the
 * instance's members, marking the ones evaluated. */
static int phx_schema_eval_members(struct phx_schema_run *run, const struct phx_schema_node *n,
                                   const struct phx_schema_frame *f)
{
    json_t *obj = (json_t *)f->inst;
    int bad = 0;
    size_t i = 0;
    if (!n->properties && !n->n_pats && !n->additional && !n->property_names)
        return 0;
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it), i++) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        const json_t *val = json_object_iter_value(it);
        struct phx_schema_path p = {f->path, key, klen, 0};
        int matched = 0, fail = 0;
        if (n->property_names) {
            json_t *name = json_stringn(key, klen);
            if (!name)
                run->oom = 1;
            else if (phx_schema_eval_member(run, n->property_names, f, name, &p, 1,
                                            "propertyNames"))
                fail = 1;
            json_decref(name);
        }
        json_t *sub = n->properties ? json_object_getn(n->properties, key, klen) : NULL;
        if (sub) {
            matched = 1;
            fail |= phx_schema_eval_member(run, phx_schema_map_get(run->reg, sub), f, val, &p, 1,
                                           "properties");
        }
        for (size_t k = 0; k < n->n_pats && !(fail && phx_schema_stop(run, f)); k++) {
            if (phx_schema_rx_match(run->reg, &n->pats[k].re, key, klen)) {
                matched = 1;
                fail |= phx_schema_eval_member(run, n->pats[k].node, f, val, &p, 1,
                                               "patternProperties");
            }
        }
        if (!matched && n->additional) {
            matched = 1;
            fail |=
                phx_schema_eval_member(run, n->additional, f, val, &p, 1, "additionalProperties");
        }
        if (matched)
            phx_schema_ann_set(f->ann, i);
        if (fail) {
            bad = 1;
            if (phx_schema_stop(run, f))
                return 1;
        }
    }
    return bad;
}

static int phx_schema_eval_object(struct phx_schema_run *run, const struct phx_schema_node *n,
                                  const struct phx_schema_frame *f)
{
    if (!json_is_object(f->inst))
        return 0;
    const json_t *obj = f->inst;
    size_t size = json_object_size(obj);
    int bad = 0;
    if (n->min_props >= 0 && size < (size_t)n->min_props) {
        phx_schema_fail(run, f, f->path, "minProperties",
                        "must have at least %lld properties, has %zu", n->min_props, size);
        bad = 1;
    }
    if (n->max_props >= 0 && size > (size_t)n->max_props) {
        phx_schema_fail(run, f, f->path, "maxProperties",
                        "must have at most %lld properties, has %zu", n->max_props, size);
        bad = 1;
    }
    for (size_t i = 0; i < json_array_size(n->required); i++) {
        const json_t *name = json_array_get(n->required, i);
        if (json_object_getn(obj, json_string_value(name), json_string_length(name)))
            continue;
        struct phx_schema_path p = {f->path, json_string_value(name), json_string_length(name), 0};
        phx_schema_fail(run, f, &p, "required", "missing required property \"%s\"",
                        json_string_value(name));
        bad = 1;
    }
    if (bad && phx_schema_stop(run, f))
        return 1;
    if (n->dep_required) {
        for (void *it = json_object_iter(n->dep_required); it;
             it = json_object_iter_next(n->dep_required, it)) {
            if (!json_object_getn(obj, json_object_iter_key(it), json_object_iter_key_len(it)))
                continue;
            const json_t *list = json_object_iter_value(it);
            for (size_t i = 0; i < json_array_size(list); i++) {
                const json_t *name = json_array_get(list, i);
                if (json_object_getn(obj, json_string_value(name), json_string_length(name)))
                    continue;
                struct phx_schema_path p = {f->path, json_string_value(name),
                                            json_string_length(name), 0};
                phx_schema_fail(run, f, &p, "dependentRequired",
                                "property \"%s\" is required when \"%s\" is present",
                                json_string_value(name), json_object_iter_key(it));
                bad = 1;
            }
        }
        if (bad && phx_schema_stop(run, f))
            return 1;
    }
    if (phx_schema_eval_members(run, n, f)) {
        bad = 1;
        if (phx_schema_stop(run, f))
            return 1;
    }
    if (n->dep_schemas) {
        for (void *it = json_object_iter(n->dep_schemas); it;
             it = json_object_iter_next(n->dep_schemas, it)) {
            if (!json_object_getn(obj, json_object_iter_key(it), json_object_iter_key_len(it)))
                continue;
            const struct phx_schema_node *sub =
                phx_schema_map_get(run->reg, json_object_iter_value(it));
            if (phx_schema_eval_same(run, sub, f, 1, 1, "dependentSchemas")) {
                bad = 1;
                if (phx_schema_stop(run, f))
                    return 1;
            }
        }
    }
    return bad;
}

static int phx_schema_eval_logic(struct phx_schema_run *run, const struct phx_schema_node *n,
                                 const struct phx_schema_frame *f)
{
    int bad = 0;
    for (size_t i = 0; i < n->n_all_of; i++) {
        if (phx_schema_eval_same(run, n->all_of[i], f, 1, 1, "allOf")) {
            bad = 1;
            if (phx_schema_stop(run, f))
                return 1;
        }
    }
    if (n->n_any_of) {
        int any = 0;
        /* with annotations wanted every branch must run: each passing one contributes */
        for (size_t i = 0; i < n->n_any_of && !(any && !f->ann); i++)
            any |= !phx_schema_eval_same(run, n->any_of[i], f, 0, 1, "anyOf");
        if (!any) {
            phx_schema_fail(run, f, f->path, "anyOf", "does not match any of the %zu alternatives",
                            n->n_any_of);
            bad = 1;
            if (phx_schema_stop(run, f))
                return 1;
        }
    }
    if (n->n_one_of) {
        size_t passed = 0, first = 0;
        /* annotations of a second passing branch are dropped with the failing node */
        for (size_t i = 0; i < n->n_one_of && passed < 2; i++) {
            if (!phx_schema_eval_same(run, n->one_of[i], f, 0, 1, "oneOf") && passed++ == 0)
                first = i;
        }
        if (passed != 1) {
            if (passed == 0)
                phx_schema_fail(run, f, f->path, "oneOf",
                                "does not match any of the %zu alternatives", n->n_one_of);
            else
                phx_schema_fail(run, f, f->path, "oneOf",
                                "matches more than one alternative (%zu and another)", first);
            bad = 1;
            if (phx_schema_stop(run, f))
                return 1;
        }
    }
    if (n->not_ && !phx_schema_eval_same(run, n->not_, f, 0, 0, "not")) {
        phx_schema_fail(run, f, f->path, "not", "must not match the schema in \"not\"");
        bad = 1;
        if (phx_schema_stop(run, f))
            return 1;
    }
    if (n->if_) {
        int ok = !phx_schema_eval_same(run, n->if_, f, 0, 1, "if");
        const struct phx_schema_node *branch = ok ? n->then_ : n->else_;
        if (branch && phx_schema_eval_same(run, branch, f, 1, 1, ok ? "then" : "else"))
            bad = 1;
    }
    return bad;
}

/* unevaluatedItems/Properties: every member no other keyword of this node evaluated. Runs
 * last, with f->ann holding what the rest of the node collected. */
static int phx_schema_eval_unevaluated(struct phx_schema_run *run, const struct phx_schema_node *n,
                                       const struct phx_schema_frame *f)
{
    int bad = 0;
    if (n->unevaluated_items && json_is_array(f->inst) && f->ann) {
        for (size_t i = 0; i < json_array_size(f->inst); i++) {
            if (phx_schema_ann_get(f->ann, i))
                continue;
            struct phx_schema_path p = {f->path, NULL, 0, i};
            if (phx_schema_eval_member(run, n->unevaluated_items, f, json_array_get(f->inst, i), &p,
                                       1, "unevaluatedItems")) {
                bad = 1;
                if (phx_schema_stop(run, f))
                    return 1;
            }
            phx_schema_ann_set(f->ann, i);
        }
    }
    if (n->unevaluated_props && json_is_object(f->inst) && f->ann) {
        json_t *obj = (json_t *)f->inst;
        size_t i = 0;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it), i++) {
            if (phx_schema_ann_get(f->ann, i))
                continue;
            struct phx_schema_path p = {f->path, json_object_iter_key(it),
                                        json_object_iter_key_len(it), 0};
            if (phx_schema_eval_member(run, n->unevaluated_props, f, json_object_iter_value(it), &p,
                                       1, "unevaluatedProperties")) {
                bad = 1;
                if (phx_schema_stop(run, f))
                    return 1;
            }
            phx_schema_ann_set(f->ann, i);
        }
    }
    return bad;
}

typedef int (*phx_schema_step)(struct phx_schema_run *, const struct phx_schema_node *,
                               const struct phx_schema_frame *);

/* Keyword groups in evaluation order; unevaluated* must come last. */
static const phx_schema_step phx_schema_steps[] = {
    phx_schema_eval_refs,   phx_schema_eval_generic,     phx_schema_eval_number,
    phx_schema_eval_string, phx_schema_eval_array,       phx_schema_eval_object,
    phx_schema_eval_logic,  phx_schema_eval_unevaluated,
};

static const char *phx_schema_false_msg(const char *via)
{
    if (strcmp(via, "additionalProperties") == 0 || strcmp(via, "unevaluatedProperties") == 0)
        return "property is not allowed";
    if (strcmp(via, "items") == 0 || strcmp(via, "unevaluatedItems") == 0 ||
        strcmp(via, "prefixItems") == 0)
        return "item is not allowed";
    if (strcmp(via, "propertyNames") == 0)
        return "property name is not allowed";
    return "no value is allowed here (false schema)";
}

/* Evaluate node n against f->inst. via names the keyword that applied n (for messages). */
static int phx_schema_eval(struct phx_schema_run *run, const struct phx_schema_node *n,
                           const struct phx_schema_frame *f, const char *via)
{
    if (n->boolean >= 0) {
        if (!n->boolean)
            phx_schema_fail(run, f, f->path, via, "%s", phx_schema_false_msg(via));
        return !n->boolean;
    }
    if (run->depth >= PHX_SCHEMA_MAX_DEPTH) {
        phx_schema_fail(run, f, f->path, via, "schema evaluation nested more than %d deep",
                        PHX_SCHEMA_MAX_DEPTH);
        return 1;
    }
    if (phx_schema_spend(run) < 0)
        return 1; /* reported once, by phx_schema_validate */
    struct phx_schema_frame fr = *f;
    struct phx_schema_scope scope = {f->scope, n->res};
    if (!f->scope || f->scope->res != n->res)
        fr.scope = &scope;
    struct phx_schema_ann local;
    int annotate =
        (f->ann || n->has_unevaluated) && (json_is_object(f->inst) || json_is_array(f->inst));
    fr.ann = NULL;
    if (annotate) {
        if (phx_schema_ann_init(&local, f->inst) < 0) {
            run->oom = 1;
            return 1;
        }
        fr.ann = &local;
    }
    run->depth++;
    int bad = 0;
    for (size_t k = 0; k < sizeof(phx_schema_steps) / sizeof(phx_schema_steps[0]); k++) {
        if (phx_schema_steps[k](run, n, &fr)) {
            bad = 1;
            if (phx_schema_stop(run, &fr))
                break;
        }
    }
    run->depth--;
    if (annotate) {
        if (!bad && f->ann)
            phx_schema_ann_merge(f->ann, &local);
        free(local.bits);
    }
    return bad || run->oom;
}

/* --- public API --------------------------------------------------------------------------- */

phx_schema *phx_schema_new(json_t *root, char *err, size_t errlen)
{
    char where[PHX_SCHEMA_WHERE] = "";
    struct phx_schema_cc cc = {.err = err, .errlen = errlen, .strict = 1, .where = where};
    phx_schema *s = calloc(1, sizeof(*s));
    if (!root) {
        phx_schema_errf(err, errlen, "no schema given");
        goto err;
    }
    if (!s || !(cc.reg = phx_schema_reg_new())) {
        phx_schema_errf(err, errlen, "out of memory");
        goto err;
    }
    s->reg = cc.reg;
    s->owns_reg = 1;
    char base[64];
    snprintf(base, sizeof(base), PHX_SCHEMA_ANON_BASE "%u/", ++cc.reg->anon);
    if (!(s->root = phx_schema_add_doc(&cc, root, base)) || phx_schema_link(&cc) < 0)
        goto err;
    return s;
err:
    phx_schema_free(s);
    return NULL;
}

phx_schema *phx_schema_load_file(const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_DECODE_ANY, &jerr);
    if (!root) {
        phx_schema_errf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    phx_schema *s = phx_schema_new(root, err, errlen);
    json_decref(root);
    if (!s && err && errlen) {
        /* say which file the schema error is in */
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", err);
        phx_schema_errf(err, errlen, "%s: %s", path, msg);
    }
    return s;
}

void phx_schema_free(phx_schema *s)
{
    if (!s)
        return;
    if (s->owns_reg)
        phx_schema_reg_free(s->reg);
    free(s->name);
    free(s);
}

int phx_schema_validate(const phx_schema *s, const json_t *instance, json_t **errors_out)
{
    if (errors_out)
        *errors_out = NULL;
    if (!s || !instance)
        return -1;
    struct phx_schema_run run = {s->reg, NULL, 0, 0, instance, PHX_SCHEMA_MAX_EVALS, 0, 0};
    if (errors_out && !(run.errors = json_array()))
        return -1;
    struct phx_schema_frame f = {instance, NULL, NULL, NULL, 1};
    int bad = phx_schema_eval(&run, s->root, &f, "$schema");
    if (!bad && !run.oom && !run.exhausted) {
        json_decref(run.errors);
        return 0;
    }
    if (run.exhausted && run.errors) {
        /* first, so it is never cut by PHX_SCHEMA_MAX_ERRORS */
        json_t *e = json_pack("{s:s, s:s, s:s}", "path", "", "keyword", "$schema", "message",
                              "validation stopped: the schema needs more evaluations than "
                              "the instance's size allows (it branches exponentially)");
        if (!e || json_array_insert_new(run.errors, 0, e) < 0)
            run.oom = 1;
        while (json_array_size(run.errors) > PHX_SCHEMA_MAX_ERRORS)
            json_array_remove(run.errors, json_array_size(run.errors) - 1);
    }
    if (run.errors) {
        /* every failure records an error, but an invalid result must never come back empty */
        if (json_array_size(run.errors) == 0 || run.oom)
            json_array_append_new(run.errors,
                                  json_pack("{s:s, s:s, s:s}", "path", "", "keyword",
                                            run.oom ? "" : "$schema", "message",
                                            run.oom ? "out of memory while validating"
                                                    : "value does not match the schema"));
        if (errors_out) /* always true when run.errors exists; said for the analyzer */
            *errors_out = run.errors;
    }
    return run.oom ? -1 : 1;
}

phx_schema_set *phx_schema_set_new(void)
{
    phx_schema_set *set = calloc(1, sizeof(*set));
    if (!set || !(set->reg = phx_schema_reg_new())) {
        free(set);
        return NULL;
    }
    return set;
}

/* Undo a failed add: drop every node, resource, anchor and document it created and every
 * link from older nodes into them. */
static void phx_schema_set_rollback(phx_schema_set *set, size_t n_nodes, size_t n_res,
                                    size_t n_docs)
{
    struct phx_schema_reg *r = set->reg;
    while (r->n_nodes > n_nodes)
        phx_schema_node_free(r->nodes[--r->n_nodes]);
    while (r->n_res > n_res)
        phx_schema_res_free(r->res[--r->n_res]);
    while (json_array_size(r->docs) > n_docs)
        json_array_remove(r->docs, json_array_size(r->docs) - 1);
    for (size_t i = 0; i < r->n_res; i++) {
        struct phx_schema_res *res = r->res[i];
        size_t keep = 0;
        for (size_t k = 0; k < res->n_anchors; k++) {
            if (res->anchors[k].node->id < n_nodes)
                res->anchors[keep++] = res->anchors[k];
            else
                free(res->anchors[k].name);
        }
        res->n_anchors = keep;
    }
    for (size_t i = 0; i < r->n_nodes; i++) {
        struct phx_schema_node *n = r->nodes[i];
        if (n->ref && n->ref->id >= n_nodes)
            n->ref = NULL;
        if (n->dynref && n->dynref->id >= n_nodes) {
            n->dynref = NULL;
            n->dynref_name = NULL;
        }
    }
    /* The map may point at freed nodes: rebuild it from the surviving list. If even that
     * allocation fails, clear the stale slots in place and re-insert (cannot need more room). */
    if (r->map_cap && phx_schema_map_rebuild(r, r->map_cap) < 0) {
        memset(r->map, 0, r->map_cap * sizeof(*r->map));
        for (size_t i = 0; i < r->n_nodes; i++)
            phx_schema_map_put_raw(r->map, r->map_cap, r->nodes[i]->json, r->nodes[i]);
        r->map_used = r->n_nodes;
    }
}

int phx_schema_set_add(phx_schema_set *set, const char *name, json_t *root, char *err,
                       size_t errlen)
{
    char where[PHX_SCHEMA_WHERE] = "";
    struct phx_schema_cc cc = {
        .reg = set->reg, .err = err, .errlen = errlen, .strict = 0, .where = where};
    struct phx_schema_reg *r = set->reg;
    size_t n_nodes = r->n_nodes, n_res = r->n_res, n_docs = json_array_size(r->docs);
    struct phx_schema_buf base = {0};
    phx_schema *s = NULL;

    if (!name || !*name || !root) {
        phx_schema_errf(err, errlen, "a member needs a name and a schema");
        return -1;
    }
    if (phx_schema_set_get(set, name)) {
        phx_schema_errf(err, errlen, "%s: a schema of that name is already in the set", name);
        return -1;
    }
    /* "phx-schema:/set/NAME", the name percent-encoded so any name makes a valid URI */
    phx_schema_buf_str(&base, PHX_SCHEMA_SET_BASE);
    for (const char *p = name; *p; p++) {
        if (phx_schema_uri_unreserved(*p)) {
            phx_schema_buf_chr(&base, *p);
        } else {
            char pct[4];
            snprintf(pct, sizeof(pct), "%%%02X", (unsigned char)*p);
            phx_schema_buf_str(&base, pct);
        }
    }
    if (set->n_members == set->cap_members) {
        size_t cap = set->cap_members ? set->cap_members * 2 : 8;
        phx_schema **v = realloc(set->members, cap * sizeof(*v));
        if (!v)
            goto oom;
        set->members = v;
        set->cap_members = cap;
    }
    if (base.oom || !(s = calloc(1, sizeof(*s))) || !(s->name = strdup(name)))
        goto oom;
    s->reg = r;
    if (!(s->root = phx_schema_add_doc(&cc, root, base.p)) || phx_schema_link(&cc) < 0)
        goto err;
    set->members[set->n_members++] = s;
    free(base.p);
    return 0;
oom:
    phx_schema_errf(err, errlen, "out of memory");
err:
    if (err && errlen) {
        /* name the member: the compiler's messages start with a pointer into its document */
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", err);
        phx_schema_errf(err, errlen, "%s: %s", name, msg);
    }
    phx_schema_set_rollback(set, n_nodes, n_res, n_docs);
    phx_schema_free(s);
    free(base.p);
    return -1;
}

const phx_schema *phx_schema_set_get(const phx_schema_set *set, const char *name)
{
    for (size_t i = 0; set && name && i < set->n_members; i++) {
        if (strcmp(set->members[i]->name, name) == 0)
            return set->members[i];
    }
    return NULL;
}

int phx_schema_set_check(const phx_schema_set *set, char *err, size_t errlen)
{
    const struct phx_schema_reg *r = set->reg;
    for (size_t i = 0; i < r->n_nodes; i++) {
        const struct phx_schema_node *n = r->nodes[i];
        if ((n->ref_uri && !n->ref) || (n->dynref_uri && !n->dynref)) {
            phx_schema_errf(err, errlen, "#%s: unresolved reference \"%s\"",
                            n->ref_where ? n->ref_where : "",
                            n->ref_uri && !n->ref ? n->ref_uri : n->dynref_uri);
            return -1;
        }
    }
    return 0;
}

void phx_schema_set_free(phx_schema_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n_members; i++)
        phx_schema_free(set->members[i]);
    free(set->members);
    phx_schema_reg_free(set->reg);
    free(set);
}
