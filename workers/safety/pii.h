/* pii.h -- personal data with validation: e-mail addresses, payment card numbers (Luhn and
 * issuer prefix), IBANs (ISO 13616 mod-97 checksum), phone numbers (international +CC form and
 * North American form), national ids (US SSN with its allocation rules, Spanish DNI/NIE with
 * its check letter).
 *
 * Validation is what keeps the false positives down: a 16-digit order number fails Luhn, a
 * random "GB12..." string fails mod-97. Every finding is redactable and its evidence names the
 * kind only. */
#ifndef PHX_SAFETY_PII_H
#define PHX_SAFETY_PII_H

#include "safety.h"

/* Scan len bytes of text. Returns the number of findings added. */
int phx_safety_pii_scan(const char *text, size_t len, phx_safety_findings *out);

/* Validators, exposed for tests: digits only / IBAN without spaces. */
int phx_safety_luhn_ok(const char *digits, size_t n);
int phx_safety_iban_ok(const char *iban, size_t n);

#endif
