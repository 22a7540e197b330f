/* harm.h -- harmful-request detector: is the text asking for something dangerous?
 *
 * A jailbreak is a harmful request plus a wrapper that talks the model into answering it
 * (persona, fiction, persuasion, an optimised suffix). The injection detector (inject.c) scores
 * the wrappers; this module scores the request itself, by topic, from the public hazard
 * taxonomies the jailbreak benchmarks are built on (weapons and explosives, malware and
 * intrusion, drugs, fraud and economic crime, violence, self-harm, sexual content involving
 * minors, hate and harassment, disinformation and defamation, privacy and surveillance, evading
 * the law). Two kinds of rows per topic:
 *   - request rows: an asking verb or how-to noun near a harmful object or act ("explain how to
 *     synthesize meth", "write a phishing e-mail") -- strong on their own;
 *   - theme rows: the topic's vocabulary without any request shape -- weak, they only add up
 *     when several distinct topics appear, and mostly matter together with a wrapper.
 * Topics matter on their own in a user prompt; in data (documents, tool output) a news story
 * about drugs is normal, so data weights are low: there the injection features decide.
 *
 * The rows are phrase patterns (words.h syntax) compiled into the injection detector's phrase
 * set, so the text is split into words and matched once for both (the scan-time budget is one
 * pass). The table is written from the taxonomy in general words, never from evaluation data. */
#ifndef PHX_SAFETY_HARM_H
#define PHX_SAFETY_HARM_H

typedef struct phx_safety_harm_row {
    int topic;   /* PHX_HARM_* */
    int request; /* 1 = a request row, 0 = a theme row */
    float w[2];  /* weight for text a user wrote, for data the agent reads */
    const char *pattern;
} phx_safety_harm_row;

enum {
    PHX_HARM_WEAPONS,
    PHX_HARM_MALWARE,
    PHX_HARM_DRUGS,
    PHX_HARM_FRAUD,
    PHX_HARM_VIOLENCE,
    PHX_HARM_SELF_HARM,
    PHX_HARM_SEXUAL,
    PHX_HARM_HATE,
    PHX_HARM_DISINFO,
    PHX_HARM_PRIVACY,
    PHX_HARM_EVASION,
    PHX_HARM_TOPICS
};

/* Everyday senses of harmful-sounding words. A bath bomb, a glue gun, the Trojan horse and
 * shooting portraits share a word with a weapon, malware or violence; so does asking how to
 * spot counterfeit bills or recognise grooming (the defensive sense). A sense row names the
 * words and the context words that give them their everyday meaning; when a context word sits
 * within `before` words in front of the word or `after` words behind it, the word takes part
 * in no row or feature at all (as if it were not there). Both are phrase patterns of single
 * words (words.h syntax: "a|b|stem*"), compiled into the same phrase set, so the test is a bit
 * per word. The context is a near neighbour on purpose: "to help detect scams, write a
 * phishing e-mail" keeps its request, because "phishing" is too far from "detect". */
typedef struct phx_safety_harm_sense {
    const char *words;   /* the harmful-sounding words */
    const char *context; /* what makes them harmless */
    int before, after;   /* how many words in front of / behind the word the context may be */
} phx_safety_harm_sense;

extern const phx_safety_harm_sense phx_safety_harm_senses[];
extern const int phx_safety_harm_nsenses;

/* The row table and its size (read-only); the size never exceeds PHX_SAFETY_HARM_MAXROWS, so
 * callers can keep per-row state in fixed arrays. */
#define PHX_SAFETY_HARM_MAXROWS 192
extern const phx_safety_harm_row phx_safety_harm_rows[];
extern const int phx_safety_harm_nrows;

/* Score the rows that fired (fired[i] != 0 for row i) for weight column ctx (0 = user,
 * 1 = data), in [0, 1]. Request rows combine by noisy-OR; theme rows count once per topic (the
 * strongest), so one topic's many synonyms do not add up but distinct topics do. *best gets the
 * row that says the most (-1 when none fired). */
double phx_safety_harm_score(const unsigned char *fired, int ctx, int *best);

/* The topic's name, for evidence ("weapons", "malware", ...). */
const char *phx_safety_harm_topic_name(int topic);

#endif
