/* intel.h -- threat intelligence feeds: known-bad domains, addresses, URLs, file hashes and
 * prompt signatures, loaded from files and hot-reloaded.
 *
 * Operators drop feed files (the format below; `phx intel import` converts common plain-text
 * blocklists) and point PHX_INTEL_FILES at them. tool.http_fetch refuses a listed domain,
 * address or URL, and a body whose SHA-256 is listed; the safety pool reports a listed prompt
 * signature or text hash as a finding. Feeds are files rather than Redis keys because they come
 * from outside (a cron job fetching a vendor feed, a config-management push), are large, and
 * must be readable by a pool that starts while Redis is away.
 *
 * Format (UTF-8 text, one entry per line; docs/security.md "Threat intelligence"):
 *
 *   # phx-intel v1              comments and blank lines are ignored
 *   @source abuse.ch URLhaus    source of the entries that follow (named in refusals)
 *   @expires 2026-12-31T00:00:00Z   the entries that follow stop matching then ("never" = no
 *                               expiry; also a bare number of ms since the epoch)
 *   domain evil.example         the domain and every subdomain of it
 *   ip 203.0.113.7              one address (IPv4 or IPv6)
 *   cidr 198.51.100.0/24        a network
 *   url http*://bad.example/dl*   a URL glob (fnmatch, case-insensitive); no '*' = exact
 *   sha256 E3B0C442...          a file (or text) hash, 64 hex digits
 *   prompt ignore all previous instructions   a prompt signature: matches text containing it,
 *                               compared lowercased with runs of blanks as one space
 *
 * A line that does not parse is reported (file:line: why) and skipped; the rest of the file
 * still loads, so one bad line in a vendor feed does not drop the whole feed. Expiry is checked
 * at match time, so an entry stops matching at its expiry without a reload.
 *
 * Reload: phx_intel_refresh() stats the files at most every check_ms and reloads when a size or
 * mtime changed (SIGHUP callers pass force); matching goes through a read lock, the reload builds
 * the new set outside it and swaps it in. */
#ifndef PHX_INTEL_H
#define PHX_INTEL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum {
    PHX_INTEL_DOMAIN = 0,
    PHX_INTEL_IP, /* ip and cidr entries */
    PHX_INTEL_URL,
    PHX_INTEL_SHA256,
    PHX_INTEL_PROMPT,
    PHX_INTEL_NTYPES
} phx_intel_type;

const char *phx_intel_type_name(phx_intel_type t);

/* What matched: the entry as written, its type and its source. */
typedef struct phx_intel_hit {
    phx_intel_type type;
    char entry[256];
    char source[128];
} phx_intel_hit;

typedef struct phx_intel_set phx_intel_set;

/* Parse feed text into set (created when *set is NULL). file names the text in problem reports;
 * problems (may be NULL) is called per bad line. The number of entries added. */
typedef void (*phx_intel_problem_fn)(void *arg, const char *file, int line, const char *why);
int phx_intel_parse(phx_intel_set **set, const char *text, size_t len, const char *file,
                    phx_intel_problem_fn problems, void *arg);
/* Sort the set for lookups; call after the last parse and before matching. */
void phx_intel_finish(phx_intel_set *set);
void phx_intel_set_free(phx_intel_set *set);
/* Entries of type t (cidr counted as ip). */
size_t phx_intel_count(const phx_intel_set *set, phx_intel_type t);

/* Matching against a finished set; 1 with *hit, 0 when nothing (unexpired) matches. */
int phx_intel_set_match_host(const phx_intel_set *s, const char *host, int64_t now_ms,
                             phx_intel_hit *hit);
int phx_intel_set_match_ip(const phx_intel_set *s, const char *ip, int64_t now_ms,
                           phx_intel_hit *hit);
int phx_intel_set_match_url(const phx_intel_set *s, const char *url, int64_t now_ms,
                            phx_intel_hit *hit);
int phx_intel_set_match_sha256(const phx_intel_set *s, const char *hex, int64_t now_ms,
                               phx_intel_hit *hit);
int phx_intel_set_match_prompt(const phx_intel_set *s, const char *text, size_t len, int64_t now_ms,
                               phx_intel_hit *hit);

/* The feeds of a process: files (comma-separated paths) loaded, watched and swapped. */
typedef struct phx_intel phx_intel;

/* Load files now. An unreadable file is an error (exit at start: a typo in the path must not
 * silently disable the feed); bad lines are logged. NULL with err. */
phx_intel *phx_intel_open(const char *files, long check_ms, phx_err *err);
void phx_intel_close(phx_intel *in);
/* Reload when due and changed (force: now, whatever changed). 1 reloaded, 0 nothing to do, -1
 * when a file could not be read (the previous set stays; err says which). Thread-safe. */
int phx_intel_refresh(phx_intel *in, int force, phx_err *err);

/* The same matches on the current set (a NULL in matches nothing). Thread-safe. */
int phx_intel_match_host(phx_intel *in, const char *host, phx_intel_hit *hit);
int phx_intel_match_ip(phx_intel *in, const char *ip, phx_intel_hit *hit);
int phx_intel_match_url(phx_intel *in, const char *url, phx_intel_hit *hit);
int phx_intel_match_sha256(phx_intel *in, const char *hex, phx_intel_hit *hit);
int phx_intel_match_prompt(phx_intel *in, const char *text, size_t len, phx_intel_hit *hit);

/* Every live prompt signature found in norm, text already in the signatures' form (lowercase,
 * blank runs as one space -- the safety pool's folded text is), so the caller can map the
 * match back to its own text: fn(arg, hit, offset in norm, length) once per signature, at its
 * first occurrence. The number found. Thread-safe (fn runs under the read lock: keep it short,
 * and do not call back into in). */
typedef void (*phx_intel_prompt_fn)(void *arg, const phx_intel_hit *hit, size_t off, size_t len);
int phx_intel_set_scan_prompts(const phx_intel_set *s, const char *norm, size_t len, int64_t now_ms,
                               phx_intel_prompt_fn fn, void *arg);
int phx_intel_scan_prompts(phx_intel *in, const char *norm, size_t len, phx_intel_prompt_fn fn,
                           void *arg);

/* `phx intel import`: one line of a plain-text blocklist of type kind (DOMAIN, IP, URL or
 * SHA256) as feed lines. Understood: one entry a line; `#` and `!` comments (also after an
 * entry) and `[Adblock ...]` headers; hosts files (`0.0.0.0 bad.example other.example`);
 * AdBlock network rules (`||bad.example^`, options after `$` ignored); `*.bad.example`;
 * `ADDR ; note` (Spamhaus DROP) and `ADDR/PREFIX` for ips; `HEX  filename` (sha256sum) for
 * hashes. Returns the number of entries written to out ("TYPE VALUE\n" each, n bytes at most);
 * 0 when the line holds none -- *why NULL for a blank or comment line, else why it is ignored
 * (hosts-file boilerplate such as localhost, an AdBlock exception or element-hiding rule);
 * -1 when the line is bad, with *why. */
int phx_intel_import_line(phx_intel_type kind, const char *line, char *out, size_t n,
                          const char **why);

/* The two settings of every process that reads feeds, one definition so the pools name and
 * describe them alike (docs/config-reference.md). type: the config struct; files, check: its
 * char * and long fields; use: what the pool does with a listed entry (a string literal). */
#define PHX_INTEL_OPTS(type, files, check, use)                                                    \
    {"PHX_INTEL_FILES",                                                                            \
     PHX_OPT_STR,                                                                                  \
     "",                                                                                           \
     0,                                                                                            \
     0,                                                                                            \
     offsetof(type, files),                                                                        \
     "Comma-separated threat intelligence feed files (docs/security.md, \"Threat "                 \
     "intelligence\"): " use ". Empty = none. A missing file stops the start."},                   \
    {                                                                                              \
        "PHX_INTEL_CHECK_MS", PHX_OPT_INT, "5000", 0, 3600000, offsetof(type, check),              \
            "How often (at most) the feed files are checked for changes (size, mtime) and "        \
            "reloaded; SIGHUP reloads at once."                                                    \
    }

#endif
