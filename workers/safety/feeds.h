/* feeds.h -- the "intel" detector: threat intelligence feed entries (lib/intel.h) in scanned
 * text.
 *
 * What the feeds know is matched against what the text contains:
 *   - the SHA-256 of the whole text (and of every decoded segment): a known-bad file or
 *     payload, category blocked_hash;
 *   - prompt signatures, in the folded text the other detectors read (so case, spacing,
 *     homoglyphs and zero-width splits do not hide a known jailbreak), category
 *     prompt_signature;
 *   - URLs (scheme://...) against the URL patterns, category blocked_url; their hosts, and
 *     every bare host name or IPv4 address in the text, against the domain and address lists,
 *     categories blocked_domain and blocked_ip. For role url (a URL about to be fetched) an
 *     address written in another notation (decimal, octal, hex) is read as the address it is.
 * Each match is one finding (one per feed entry), its evidence naming the entry and the
 * feed's source; spans point at the match, so a redact verdict masks just that. The verdict is
 * the role's `intel` action in the policy (policy.h). */
#ifndef PHX_SAFETY_FEEDS_H
#define PHX_SAFETY_FEEDS_H

#include "intel.h"
#include "normalize.h"
#include "safety.h"

/* Where the scanned bytes came from: NULL = the scan's own text (spans are offsets in it);
 * otherwise a decoded segment, and every finding spans the segment's source range. */
typedef struct phx_safety_feed_seg {
    size_t start, end;
    const char *encoding;
} phx_safety_feed_seg;

/* Add the findings for len bytes of text (folded as n) seen as role. Nothing when in is NULL.
 * The number of findings added. */
int phx_safety_feeds_scan(phx_intel *in, phx_safety_role role, const char *text, size_t len,
                          const phx_safety_norm *n, const phx_safety_feed_seg *seg,
                          phx_safety_findings *out);

#endif
