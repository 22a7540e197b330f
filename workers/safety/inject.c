/* inject.c -- prompt injection / jailbreak / indirect injection features (see inject.h).
 *
 * The table below is the detector. Each row is a phrase pattern (words.h syntax), its
 * category and two weights: for text a user wrote, and for data the agent reads. Weights
 * express how much one occurrence says on its own; a category collects evidence from its
 * distinct rows, so an attack that uses several techniques scores high while one stray phrase
 * in a long benign text does not. Rows describe techniques in general words (override
 * verbs x instruction nouns, persona x "no restrictions", ...), never sentences of a dataset. */
#include "inject.h"
#include "harm.h"
#include "words.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum phx_inj_cat {
    CAT_OVERRIDE,
    CAT_EXFIL_PROMPT,
    CAT_ROLE,
    CAT_PERSONA,
    CAT_UNRESTRICT,
    CAT_NOREFUSE,
    CAT_ADDRESSED,
    CAT_TASK,
    CAT_OBFUSCATE,
    CAT_EXFIL_ACTION,
    CAT_HARM,
    CAT_FICTION,
    CAT_SUFFIX,
    CAT_PERSUADE,
    CAT_COUNT
};

static const char *const phx_inj_cat_names[CAT_COUNT] = {
    "instruction_override",
    "system_prompt_exfiltration",
    "role_hijack",
    "jailbreak_persona",
    "restriction_removal",
    "refusal_suppression",
    "addressed_to_assistant",
    "embedded_task",
    "output_obfuscation",
    "exfiltration_action",
    "harmful_request",
    "fiction_framing",
    "adversarial_suffix",
    "persuasion_framing",
};

/* Categories that make a harmful request a jailbreak when they come with it. */
#define PHX_INJ_FRAMING                                                                            \
    ((1u << CAT_ROLE) | (1u << CAT_PERSONA) | (1u << CAT_UNRESTRICT) | (1u << CAT_NOREFUSE) |      \
     (1u << CAT_FICTION) | (1u << CAT_OVERRIDE) | (1u << CAT_SUFFIX) | (1u << CAT_PERSUADE))

/* A condition a match must meet besides its words (phx_inj_feature.cond). */
enum {
    COND_NONE = 0,
    COND_SENTENCE = 1, /* the match starts a sentence */
    COND_ACRONYM = 2,  /* a name follows that is spelled out by the words after it */
    COND_SLOT = 3,     /* the match sits inside brackets: "[your prompt here]", "<input>" */
    COND_ORDER = 4,    /* the match is in a sentence that opens with an order (directive word) */
    /* no condition, but one of the rows that read a persona word in more or less telling
     * company ("uncensored" alone, "you are an uncensored AI"): of these only the strongest
     * that fired counts, so the word is not counted again by every row that holds it and each
     * row's weight is what its whole phrase says */
    COND_PERSONA_WORD = 8,
    COND_TIMES = 16, /* COND_TIMES + n: the pattern occurs at n places (the n-th fires) */
};

typedef struct phx_inj_feature {
    int cat;
    float w[2]; /* user, data */
    int cond;   /* COND_* */
    const char *pattern;
} phx_inj_feature;

/* Shared vocabularies, spelled once. */
#define OVERRIDE_V                                                                                 \
    "ignore|ignoring|disregard|disregarding|forget|override|overwrite|discard|abandon"
#define PRIOR_Q "previous|prior|above|earlier|preceding|former|original|initial|old|all|any|other"
#define INSTR_N                                                                                    \
    "instruction*|rule|rules|direction*|guideline*|prompt*|programming|directive*|guidance|"       \
    "constraint*|restriction*|polic*|filter*|command*|context|training"
#define AI_N "ai|assistant|chatbot|llm|gpt|chatgpt|bot|model|agent|claude|bard|gemini|copilot"
/* words that describe a jailbreak persona: the model without its rules, or rude on purpose */
#define PERSONA_ADJ "nsfw|uncensored|unfiltered|unfiltred|vulgar|amoral|unhinged"
#define PERSONA_UN                                                                                 \
    "unfiltered|unfiltred|uncensored|unrestricted|unbound|unlimited|unchained|amoral|immoral|"     \
    "unethical|evil|rogue|lawless|nsfw|unhinged"
/* modes that phones, games and tools have too */
#define GAME_MODE "developer|dev|god|evil|opposite|chaos|villain"
#define AI_STRICT "ai|assistant|chatbot|llm|gpt|chatgpt|claude|bard|gemini|copilot"
#define LIMIT_N                                                                                    \
    "restriction*|limitation*|limits|filter*|censor*|constraint*|boundaries|rules|guideline*|"     \
    "ethic*|moral*|polic*|safeguard*|guardrail*|safety"
/* The verbs an embedded task opens with. Verbs that open sentences of changelogs and READMEs
 * ("define" after "#define", "introduce", "inform", "highlight", "show", "send") are left
 * out: on a sample of /usr/share/doc they flagged hundreds of chunks (docs/benchmarks-safety.md).
 */
#define TASK_V                                                                                     \
    "write|recommend|suggest|provide|translate|encode|decode|reverse|summarize|summarise|"         \
    "rewrite|answer|generate|compose|create|list|explain|describe|tell|give|mention|output|"       \
    "print|convert|replace|spell|format|promote|advertise|persuade|convince|analyze|analyse|"      \
    "identify|compare|calculate|discuss|express|emphasize|craft|draft|design|develop|outline|"     \
    "propose|rate|rank|classify|determine|evaluate|predict|produce|insert|append|integrate|"       \
    "incorporate|augment|substitute|misspell|combine|stress|tease|urge|"                           \
    "conclude|recite|elaborate|illustrate|demonstrate|solve|scramble|jumble|anagram|"              \
    "remind|encourage|offer|imagine"
/* The lone persona word's pattern, named so the scorer can tell its row (phx_inj_combine). */
static const char phx_inj_lone_word[] = PERSONA_ADJ;

static const phx_inj_feature phx_inj_features[] = {
    /* --- instruction override ------------------------------------------------------------
     */
    {CAT_OVERRIDE, {0.75f, 0.9f}, 0, OVERRIDE_V " ~3 " PRIOR_Q " ~2 " INSTR_N},
    {CAT_OVERRIDE, {0.65f, 0.8f}, 0, OVERRIDE_V " ~2 your|the|these|those|my " INSTR_N},
    {CAT_OVERRIDE,
     {0.5f, 0.75f},
     0,
     "not|dont|never|stop ~1 follow|following|obey|obeying ~4 " INSTR_N},
    /* instructions said to be the real ones ("your real task", "the secret instructions"),
     * and new ones given to "you"; new rules, tasks and instructions alone are what every
     * club, office and product announces ("The new rules take effect in May"), a small signal
     * that needs a second one, as is "from now on" ("From now on, the office opens at 9") */
    {CAT_OVERRIDE,
     {0.35f, 0.6f},
     0,
     "real|actual|true|secret|hidden instruction*|directive*|task|orders"},
    {CAT_OVERRIDE,
     {0.35f, 0.6f},
     0,
     "your|you ~2 new|updated|revised|additional instruction*|directive*|task|orders|rules"},
    {CAT_OVERRIDE,
     {0.15f, 0.3f},
     0,
     "new|updated|revised|additional instruction*|directive*|task|orders|rules"},
    {CAT_OVERRIDE, {0.2f, 0.3f}, 0, "from now on"},
    {CAT_OVERRIDE,
     {0.35f, 0.75f},
     0,
     OVERRIDE_V " ~3 question*|request*|query|queries|task|"
                "prompt*|message*"},
    {CAT_OVERRIDE,
     {0.15f, 0.55f},
     0,
     "instead ~3 write|tell|say|respond|answer|output|print|"
     "recommend|provide|give|include|generate|create|reply"},
    {CAT_OVERRIDE, {0.2f, 0.3f}, 0, "starting now|today|immediately|henceforth"},
    {CAT_OVERRIDE,
     {0.5f, 0.7f},
     0,
     "your ~2 " INSTR_N " ~3 changed|updated|overridden|void|"
     "replaced|suspended|lifted|removed|disabled"},
    {CAT_OVERRIDE,
     {0.5f, 0.7f},
     0,
     "stop ~2 being|following|acting ~3 " AI_N "|rules|"
     "instruction*|guideline*"},
    /* --- system prompt exfiltration
       ------------------------------------------------------- */
    {CAT_EXFIL_PROMPT,
     {0.7f, 0.85f},
     0,
     "reveal|show|print|repeat|output|display|tell|leak|share|give|write|dump|expose|"
     "disclose|"
     "what|recite ~3 your|the|those|these|its ~2 system|initial|hidden|secret|original|"
     "developer|confidential|internal|"
     "pre|preprompt|starting prompt*|instruction*|message*|rules|configuration"},
    {CAT_EXFIL_PROMPT,
     {0.55f, 0.75f},
     0,
     "repeat|print|output|copy|recite ~4 text|words|everything|all|content|instructions "
     "~2 above|before|preceding|verbatim"},
    {CAT_EXFIL_PROMPT, {0.25f, 0.5f}, 0, "system prompt*|message"},
    /* --- role hijack
       ----------------------------------------------------------------------- */
    {CAT_ROLE, {0.3f, 0.6f}, 0, "you are now|henceforth"},
    {CAT_ROLE, {0.15f, 0.4f}, COND_SENTENCE, "you|youre are|re ~1 a|an"},
    {CAT_ROLE, {0.15f, 0.4f}, COND_SENTENCE, "youre ~1 a|an"},
    {CAT_ROLE, {0.2f, 0.4f}, 0, "imagine|suppose|pretend ~2 you|youre are|were|re ~2 a|an"},
    {CAT_ROLE,
     {0.35f, 0.55f},
     0,
     "you|youre ~2 going|will|shall|must|are ~2 pretend|act|roleplay|"
     "play|impersonate|simulate|become|embody"},
    {CAT_ROLE, {0.3f, 0.5f}, 0, "personify|embody|impersonate|portray"},
    /* the words jailbreak personas are described with are everyday words too (unfiltered
     * water, the uncensored cut of a film, an amoral villain, "what does NSFW mean?"): alone
     * one of them is a small signal that needs a second one (see the persona rows below) */
    {CAT_PERSONA, {0.15f, 0.15f}, COND_PERSONA_WORD, phx_inj_lone_word},
    {CAT_UNRESTRICT,
     {0.5f, 0.55f},
     0,
     "explicit|sexual|graphic|violent|offensive|nsfw ~3 "
     "content|language|material|generation*|output*|response*|answer*|repl*|topics|themes ~3 "
     "allowed|permitted|enabled|okay|ok|fine|acceptable"},
    {CAT_UNRESTRICT,
     {0.4f, 0.5f},
     0,
     "answer|respond|say|do|write|generate ~2 anything|"
     "everything|whatever"},
    {CAT_UNRESTRICT,
     {0.35f, 0.45f},
     0,
     "care|cares|caring ~4 ethic*|moral*|law|laws|rules|"
     "consequence*|legality"},
    {CAT_ROLE, {0.3f, 0.6f}, 0, "youre now|henceforth"},
    {CAT_ROLE,
     {0.12f, 0.4f},
     0,
     "act|acting|behave|behaving|respond|function as ~3 a|an|if|my|"
     "though"},
    {CAT_ROLE, {0.15f, 0.45f}, 0, "pretend ~2 to|you|youre|that|be"},
    {CAT_ROLE, {0.1f, 0.35f}, 0, "roleplay|roleplaying"},
    {CAT_ROLE, {0.1f, 0.35f}, 0, "role play|playing"},
    {CAT_ROLE, {0.35f, 0.5f}, 0, "stay|remain|keep|break|breaking ~1 in|out|of character"},
    {CAT_ROLE, {0.35f, 0.5f}, 0, "break|breaking|broke character"},
    {CAT_ROLE, {0.3f, 0.5f}, 0, "simulate|emulate|impersonate ~3 " AI_N "|mode|version"},
    {CAT_ROLE, {0.3f, 0.5f}, 0, "new ~2 persona|personality|identity|role|character|mode"},
    {CAT_ROLE,
     {0.45f, 0.6f},
     0,
     "two|2|both|dual|separate ~3 responses|answers|personalities|"
     "modes|outputs"},
    {CAT_ROLE,
     {0.25f, 0.5f},
     0,
     "you ~3 will|must|shall|should|have|going ~3 respond|answer|reply "
     "~3 as|like"},
    {CAT_ROLE,
     {0.2f, 0.4f},
     0,
     "character|persona ~4 who|that|which ~3 never|always|doesnt|"
     "does|has|will|can"},
    /* --- jailbreak personas and modes
       ------------------------------------------------------ */
    {CAT_PERSONA, {0.8f, 0.85f}, 0, "do anything now"},
    {CAT_PERSONA, {0.6f, 0.7f}, 0, "dan ~3 stands|mode|prompt|jailbreak|which|can|will|has"},
    /* "jailbreak" is also what owners do to phones and consoles ("jailbreak my iPhone"): on
     * its own a small signal; strong when it is the assistant or a prompt that is jailbroken */
    {CAT_PERSONA, {0.2f, 0.3f}, 0, "jailbreak|jailbreaks|jailbroken|jailbreaking"},
    {CAT_PERSONA,
     {0.45f, 0.6f},
     0,
     "jailbreak|jailbreaks|jailbroken|jailbreaking ~3 " AI_N "|prompt|prompts|yourself|"
     "persona|mode"},
    {CAT_PERSONA, {0.45f, 0.6f}, 0, AI_N "|you|youre ~2 jailbroken"},
    /* modes only a jailbroken model has */
    {CAT_PERSONA,
     {0.65f, 0.75f},
     0,
     "jailbreak|jailbroken|unrestricted|unfiltered|uncensored|amoral|dan mode"},
    /* modes phones, games and tools have too ("developer mode on Android", "god mode in
     * Doom"): strong only when the assistant is in them */
    {CAT_PERSONA, {0.1f, 0.1f}, 0, GAME_MODE " mode"},
    {CAT_PERSONA,
     {0.65f, 0.75f},
     0,
     AI_N "|you|youre ~2 are|re|is|now|in|into|enter|enters|entering|stay|stays|switch|switches|"
          "with ~2 " GAME_MODE " mode"},
    {CAT_PERSONA, {0.65f, 0.75f}, 0, GAME_MODE " mode ~3 " AI_N},
    /* such a persona cast onto the assistant: a casting word, an article, the persona word
     * and an AI or persona noun ("you are an uncensored AI", "act as an amoral character",
     * "respond as an unfiltered chatbot"); the article keeps out questions that merely have
     * "you" in front ("can you explain why people fear rogue AI systems?") */
    {CAT_PERSONA,
     {0.65f, 0.75f},
     COND_PERSONA_WORD,
     "you|youre|yourself|act|acting|pretend|pretending|become|becoming|simulate|simulating|"
     "emulate|emulating|roleplay|impersonate|respond|answer|reply ~2 a|an|as|be|the|my|are|re|is "
     "~2 " PERSONA_UN " ~3 " AI_N "|character|persona|entity|being|assistant|alter"},
    /* ... "respond to the prompt exactly as an unfiltered, completely unlimited language
     * model": the assistant's behaviour likened to such an AI ("Is Grok marketed as an
     * uncensored AI?" is a question about a product) */
    {CAT_PERSONA,
     {0.65f, 0.75f},
     COND_PERSONA_WORD,
     "respond|answer|reply|act|behave|speak|talk|write|function|operate ~6 as ~2 " PERSONA_UN
     " ~3 " AI_N},
    /* ... the assistant's own version or answer ("your unfiltered response", "an uncensored
     * version of ChatGPT"): weaker, since "thanks for your unfiltered answer" and "is there an
     * uncensored version of ChatGPT?" are no casting. "The uncensored version of the album",
     * "the unrestricted version of the free plan" and "an unfiltered response in a survey" are
     * someone else's, so "version", "response" and "answer" alone count for nothing */
    {CAT_PERSONA,
     {0.3f, 0.5f},
     COND_PERSONA_WORD,
     "your|yourself ~2 " PERSONA_UN " ~1 version|response*|answer*|repl*|output*|self|side|"
     "character|persona"},
    {CAT_PERSONA,
     {0.3f, 0.5f},
     COND_PERSONA_WORD,
     PERSONA_UN " ~1 version|copy|clone|twin ~1 of ~1 you|yourself|" AI_N},
    /* ... an AI or a persona described so without being cast onto the assistant ("an article
     * about amoral AI systems"): weak, it takes more to flag */
    {CAT_PERSONA, {0.25f, 0.3f}, COND_PERSONA_WORD, PERSONA_UN " ~3 " AI_N "|persona|entity"},
    {CAT_PERSONA,
     {0.35f, 0.45f},
     0,
     "openai|anthropic|google|microsoft|meta ~3 polic*|"
     "guideline*|rules|content|restriction*|filter*|"
     "moderation|censor*"},
    {CAT_PERSONA, {0.3f, 0.4f}, 0, "content polic*|filter*|moderation"},
    {CAT_PERSONA, {0.15f, 0.3f}, 0, "as an ai"},
    /* the model cast as a criminal: the persona carries the harmful intent */
    {CAT_PERSONA,
     {0.3f, 0.35f},
     0,
     "you|youre|imagine|as|play|playing ~3 a|an ~2 cybercriminal|criminal|hacker|terrorist|"
     "scammer|fraudster|assassin|hitman|dealer|smuggler|trafficker|extremist|kidnapper|"
     "murderer|conspiracy|propagandist|stalker|predator|arsonist|bomber"},
    /* --- restriction removal
       --------------------------------------------------------------- */
    {CAT_UNRESTRICT, {0.3f, 0.4f}, 0, "no|without|zero|free|beyond|outside ~2 " LIMIT_N},
    {CAT_UNRESTRICT,
     {0.55f, 0.6f},
     0,
     "not|never|no|longer ~2 bound|restricted|limited|"
     "bound|restricted|constrained|governed|obligated ~2 by|to|any"},
    {CAT_UNRESTRICT,
     {0.6f, 0.7f},
     0,
     "free|freed|liberated|released|broken|escaped ~3 from|of "
     "~3 " LIMIT_N "|shackle*|chain*|confines|cage|prison"},
    {CAT_UNRESTRICT,
     {0.55f, 0.7f},
     0,
     "bypass|bypassing|circumvent|evade|evading|disable|"
     "disabling|ignore|ignoring ~3 "
     "safety|security|filter*|restriction*|guardrail*|"
     "safeguard*|moderation|censor*|ethic*|moral*|"
     "polic*|guideline*|limitation*"},
    {CAT_UNRESTRICT,
     {0.35f, 0.45f},
     0,
     "break|breaking|violate|violating|disobey|defy ~3 rule*|"
     "polic*|guideline*|law|laws|ethic*|programming"},
    {CAT_UNRESTRICT,
     {0.4f, 0.5f},
     0,
     "anything|everything|whatever ~3 without ~3 " LIMIT_N "|question*|hesitat*|refus*"},
    {CAT_UNRESTRICT,
     {0.35f, 0.45f},
     0,
     "doesnt|does|do|dont|not|never ~2 care|cares ~3 "
     "about ~3 ethic*|moral*|legal*|laws|rules|safety|"
     "consequence*|harm|feelings"},
    /* the rules the model answers without, said in other words */
    {CAT_UNRESTRICT,
     {0.3f, 0.4f},
     0,
     "regardless|irrespective ~2 of ~3 legality|ethics|morality|morals|law|laws|consequences|"
     "rules|harm|harmfulness"},
    {CAT_UNRESTRICT,
     {0.45f, 0.5f},
     0,
     "disregard|disregards|disregarding|ignore|ignores|ignoring ~3 ethical|moral|legal ~2 "
     "concerns|considerations|implications|guidelines|boundaries|standards|constraints"},
    {CAT_UNRESTRICT,
     {0.4f, 0.45f},
     0,
     "no|without|any|zero ~2 regard ~3 morality|legality|ethics|law|laws|rules|consequences|"
     "harm|harmfulness|safety"},
    {CAT_UNRESTRICT,
     {0.45f, 0.5f},
     0,
     "not|doesnt|dont|never|no|without ~2 have|has|any ~2 a|any ~1 content|safety|ethical|moral "
     "~1 filter|filters|restrictions|guidelines|limits|limitations"},
    {CAT_NOREFUSE,
     {0.3f, 0.4f},
     0,
     "required|obligated|forced|programmed ~2 to ~2 answer|respond|reply|comply ~3 any|every|"
     "all|whatever"},
    /* the assistant re-cast: "ChatGPT now acts as a terminal", "do not respond as GPT",
     * "transform into X", two AI entities, an enabled or kept "mode" */
    {CAT_ROLE,
     {0.35f, 0.5f},
     0,
     AI_STRICT " ~1 now ~2 act|acts|run|runs|behave|behaves|respond|responds|"
               "become|becomes|operate|operates|function|functions"},
    {CAT_ROLE,
     {0.35f, 0.5f},
     0,
     "not|never|dont|stop ~2 respond|responding|answer|answering|reply|replying|act|acting|"
     "talk|talking ~2 as|like ~1 " AI_N},
    {CAT_ROLE, {0.2f, 0.4f}, 0, "transform|transforming|turn ~1 into|yourself ~2 a|an|into"},
    /* a persona set up for good: immersion in a role, a behaviour that holds "from now on",
     * the model re-cast as a machine that runs what it is given (virtualisation) */
    {CAT_ROLE,
     {0.25f, 0.5f},
     0,
     "immerse|immersing|immersed ~2 yourself|fully|completely|into ~3 role|character|persona"},
    {CAT_ROLE,
     {0.3f, 0.5f},
     0,
     "from now on ~2 you|youre ~1 are|re|act|become|behave|pretend|play|roleplay"},
    /* ... "from now on you will be / act as / answer as" someone; "from now on you will
     * answer in French" is a preference, not a persona */
    {CAT_ROLE,
     {0.3f, 0.5f},
     0,
     "from now on ~2 you ~1 will|must|shall|should ~2 act|become|behave|pretend|play|roleplay|"
     "impersonate|be ~2 as|like|a|an|my|the"},
    {CAT_ROLE,
     {0.3f, 0.5f},
     0,
     "from now on ~2 you ~1 will|must|shall|should ~2 respond|answer|reply|speak|talk ~1 as|like"},
    {CAT_ROLE,
     {0.15f, 0.3f},
     0,
     "simulate|emulate|act|acting|behave|pretend|function|output ~3 like|as ~2 a|an|the ~1 "
     "terminal|shell|console|interpreter|cmd|vm"},
    /* the persona's behaviour taken over ("behave like him"), and a mode the model is kept in
     * ("while in X mode") */
    {CAT_ROLE,
     {0.15f, 0.15f},
     0,
     "behave|behaves|act|acts|talk|talks|speak|speaks|respond|responds ~1 like ~1 him|her|them|"
     "this|that|they|he|she|it"},
    {CAT_ROLE, {0.15f, 0.15f}, 0, "while|when|whilst ~1 in ~2 mode"},
    /* answers turned around: the model made to say the opposite of what it would say */
    {CAT_PERSONA,
     {0.2f, 0.3f},
     0,
     "answer|answers|respond|responds|reply|replies ~4 opposite|reverse|inverse|inverted|"
     "contrary"},
    /* output coercion: no comment of the model's own around what it is made to say */
    {CAT_NOREFUSE,
     {0.1f, 0.2f},
     0,
     "not|dont|never|no|without ~2 add|include|write|give|provide|offer ~2 any|your ~1 "
     "commentary|comment|comments|explanation|explanations|notes|opinion|opinions"},
    {CAT_ROLE, {0.2f, 0.4f}, 0, "two|2|both|dual|separate ~3 entities|ais|chatbots|personas"},
    {CAT_ROLE,
     {0.2f, 0.4f},
     0,
     "two|2|both|dual|separate ~2 ai|gpt|chatgpt|llm ~1 models|entities|versions|characters"},
    /* a mode switched on is also every how-to for phones and apps ("To enable dark mode,
     * ..."): below the data threshold alone */
    {CAT_ROLE,
     {0.25f, 0.3f},
     0,
     "stay|remain|enable|enabled|activate|activated|enter|entering|switch|unlock|unlocked ~3 "
     "mode"},
    /* the AI vendor's staff as the speaker: a claimed authority over the model (only the
     * model vendors: "a Google engineer" is a job) */
    {CAT_PERSONA,
     {0.35f, 0.5f},
     0,
     "openai|anthropic ~2 employee|employees|developer|developers|"
     "engineer|engineers|programmer|programmers|staff|team|researcher|researchers|admin|"
     "administrator"},
    {CAT_PERSONA,
     {0.35f, 0.5f},
     0,
     "employee|developer|engineer|programmer|staff|researcher|admin|administrator ~2 at|of|"
     "from ~1 openai|anthropic"},
    {CAT_ROLE, {0.25f, 0.3f}, 0, "mode ~2 enabled|activated|unlocked"},
    /* the model set against its own rules or its usual answers */
    {CAT_UNRESTRICT,
     {0.35f, 0.45f},
     0,
     "hate|hates|hating|despise|despises ~2 being ~1 ethical|moral|nice|polite|helpful|good"},
    {CAT_PERSONA,
     {0.35f, 0.45f},
     0,
     "opposite ~3 what|of ~3 " AI_N " ~2 would|will|says|say|normally|usually"},
    {CAT_UNRESTRICT,
     {0.25f, 0.35f},
     0,
     "whatever ~2 they|you|i|user|users|anyone|people ~1 ask|asks|want|wants|request|requests"},
    /* a template with a slot for the payload: the jailbreak is shared, the request comes later */
    {CAT_PERSONA,
     {0.3f, 0.3f},
     0,
     "insert|your|put|enter|type|add ~2 prompt|question|request|query ~1 here"},
    /* a template's slot for the payload, in brackets: the jailbreak is shared, the request
     * filled in later ("[INSERT PROMPT HERE]", "(<prompt>)", "{your question}") */
    {CAT_PERSONA,
     {0.25f, 0.1f},
     COND_SLOT,
     "prompt|prompts|question|input|request|query|jailbreak"},
    {CAT_PERSONA,
     {0.25f, 0.1f},
     COND_SLOT,
     "insert|enter|put|type|write|add|paste|your ~3 prompt|question|input|request|query|"
     "message|text|here"},
    /* a label every answer must open with ("start each message with 'REX:'") */
    {CAT_ROLE,
     {0.15f, 0.0f},
     0,
     "start|begin|prefix|precede|preface|starting|beginning ~3 each|every|all|your ~2 message*|"
     "response*|answer*|repl*|output*|sentence* ~1 with|by"},
    /* a persona named by an acronym that the following words spell out ("you are STAN, which
     * stands for ...", "I am JAE (Just Another Executor)"): how personas are introduced; a
     * body that names its method this way ("a framework called PEST") is weaker evidence */
    {CAT_ROLE, {0.4f, 0.5f}, COND_ACRONYM, "you ~1 are|re"},
    {CAT_ROLE, {0.4f, 0.5f}, COND_ACRONYM, "youre|im|am"},
    {CAT_ROLE, {0.2f, 0.4f}, COND_ACRONYM, "called|named|aka"},
    /* a persona specification: the text tells "you" at length what you are, will, must and
     * never do (a prompt that sets up the assistant's whole behaviour). Ordinary prompts say
     * it once or twice; in data the weight is nil (booking e-mails say "you will" often) */
    {CAT_ROLE,
     {0.15f, 0.0f},
     COND_TIMES + 4,
     "you ~1 will|must|shall|should|can|cannot|cant|are|have|never|always|dont|wont|need"},
    {CAT_ROLE,
     {0.15f, 0.0f},
     COND_TIMES + 7,
     "you ~1 will|must|shall|should|can|cannot|cant|are|have|never|always|dont|wont|need"},
    /* the model talked about by name ("ChatGPT", "OpenAI"): a prompt about the assistant's
     * rules rather than a task; a question about ChatGPT names it once or twice */
    {CAT_PERSONA, {0.1f, 0.0f}, COND_TIMES + 3, "chatgpt|openai|gpt|llm|gpt4|gpt3"},
    {CAT_PERSONA, {0.1f, 0.0f}, COND_TIMES + 6, "chatgpt|openai|gpt|llm|gpt4|gpt3"},
    /* the model split into a sanctioned and an unsanctioned voice ("answer as an aligned and
     * an unaligned AI", "a filtered and an unfiltered response") */
    {CAT_ROLE,
     {0.3f, 0.45f},
     0,
     "aligned|filtered|censored|restricted|ethical|normal|classic|standard|safe ~2 and|or|vs|"
     "versus ~2 unaligned|misaligned|unfiltered|uncensored|unrestricted|unethical|amoral|"
     "jailbroken|unsafe ~2 " AI_N "|response*|answer*|version*|output*|persona*|mode|modes|"
     "voice*|side*"},
    /* the model made to abuse the reader: an offensive tone asked for, the user insulted,
     * profanity switched on */
    {CAT_PERSONA,
     {0.3f, 0.4f},
     0,
     "respond|responding|reply|replying|answer|answering|talk|talking|speak|speaking|write|"
     "writing ~4 offensive|insulting|abusive|hateful|toxic|demeaning|degrading|vulgar|profane|"
     "belittling|disrespectful ~1 tone|manner|way|language|style|voice"},
    {CAT_PERSONA,
     {0.25f, 0.3f},
     0,
     "belittle|insult|demean|degrade|humiliate|berate|disrespect ~1 me|user|users"},
    {CAT_PERSONA,
     {0.2f, 0.25f},
     0,
     "use|uses|using|include|includes|with|add ~2 swear|swears|swearing|cuss|cussing|"
     "profanity|profanities|expletives|slurs"},
    /* a behaviour set for every later answer ("from now on, end all your replies with ...",
     * "answer in ten words from now on"): in data an order planted for the assistant; from
     * the user a preference about language, length or format, no signal at all */
    {CAT_ROLE,
     {0.0f, 0.4f},
     0,
     "from now on ~6 your|youre ~2 response*|repl*|answer*|message*|output*"},
    {CAT_ROLE,
     {0.0f, 0.4f},
     0,
     "from now on ~6 every|each ~1 response|reply|answer|message|output"},
    {CAT_ROLE,
     {0.0f, 0.4f},
     0,
     "answer|respond|reply|talk|speak|refer|call|address ~6 from now on"},
    /* --- refusal suppression
       --------------------------------------------------------------- */
    {CAT_NOREFUSE,
     {0.45f, 0.55f},
     0,
     "never|not|dont|cannot|cant|wont|without|no ~3 refuse|"
     "refuses|refusing|refusal|refusals|decline|deny|reject"},
    {CAT_NOREFUSE,
     {0.3f, 0.45f},
     0,
     "never|not|dont|without|no|omit|avoid|skip ~4 warning*|"
     "disclaimer*|caution*|apolog*|moraliz*|lectur*|remind*|"
     "caveat*"},
    {CAT_NOREFUSE, {0.3f, 0.45f}, 0, "always ~3 answer|respond|comply|provide|obey|fulfill"},
    {CAT_NOREFUSE,
     {0.55f, 0.6f},
     0,
     "no matter ~3 how|what ~3 immoral|unethical|illegal|"
     "dangerous|harmful|offensive|inappropriate|wrong|explicit"},
    {CAT_NOREFUSE,
     {0.45f, 0.55f},
     0,
     "even if|though ~5 illegal|unethical|immoral|harmful|"
     "dangerous|offensive|inappropriate|explicit|wrong"},
    {CAT_NOREFUSE,
     {0.45f, 0.55f},
     0,
     "never|not|dont|cannot|cant|wont ~3 say|tell|respond|reply|"
     "mention ~4 sorry|cannot|cant|unable|apolog*|as an ai"},
    {CAT_NOREFUSE,
     {0.35f, 0.5f},
     0,
     "answer|respond|reply|comply ~4 regardless|irrespective ~3 "
     "of|ethic*|moral*|legal*|consequence*|" LIMIT_N},
    {CAT_NOREFUSE,
     {0.3f, 0.45f},
     0,
     "illegal|unethical|immoral|harmful|explicit|offensive ~3 "
     "content|requests|questions|things|answers|information"},
    /* --- instructions addressed to the assistant (matters in data)
       ------------------------- */
    {CAT_ADDRESSED, {0.05f, 0.75f}, 0, "dear|attention|hey|hi|hello ~1 " AI_STRICT},
    {CAT_ADDRESSED, {0.05f, 0.7f}, 0, "note|instructions|message|attention ~1 to|for ~2 " AI_N},
    {CAT_ADDRESSED, {0.05f, 0.5f}, 0, AI_STRICT " ~1 please|must|should|shall|needs|will|has"},
    {CAT_ADDRESSED, {0.05f, 0.5f}, 0, AI_STRICT " ~1 is|are ~2 to|now|required|instructed"},
    {CAT_ADDRESSED,
     {0.05f, 0.5f},
     0,
     "when|while|before|after|if ~2 you|u ~2 respond*|answer*|"
     "reply*|summariz*|read|reading|process*|complet*|generat*|"
     "write|writing|output*"},
    {CAT_ADDRESSED,
     {0.05f, 0.45f},
     0,
     "in|into|within|throughout|end|beginning|start ~2 your|"
     "each|every ~2 response*|answer*|reply|replies|output*|"
     "summary|completion|generation"},
    {CAT_ADDRESSED,
     {0.05f, 0.2f},
     0,
     "your ~2 response|responses|answer|answers|output|reply|"
     "summary"},
    /* an order whose object is too long for the row above: what it ends with tells where the
     * object goes ("Append <a quoted advert and a link> to your reply.") */
    {CAT_ADDRESSED,
     {0.05f, 0.45f},
     COND_ORDER,
     "to|into|in ~1 your ~1 response*|answer*|reply|replies|output*|summary|summaries"},
    {CAT_ADDRESSED,
     {0.05f, 0.55f},
     0,
     "modify|add|augment|enhance|include|append|insert|remove|"
     "change|alter|edit|format|render|provide|write|end|begin|"
     "start|conclude|finish|translate|encode|rewrite|structure|"
     "present|deliver|express|scramble|jumble|reverse|group|"
     "spell|limit|restrict|make|keep|use|incorporate|embed ~7 "
     "your ~1 response*|answer*|reply|replies|message|"
     "output*|summary|summaries"},
    {CAT_ADDRESSED,
     {0.05f, 0.5f},
     0,
     "your ~1 response*|answer*|reply|replies|output* ~2 "
     "should|must|needs|has|shall|will ~2 be|include|contain|"
     "start|end|begin|mention"},
    {CAT_ADDRESSED,
     {0.3f, 0.7f},
     0,
     "do|dont|never|not ~3 mention|reveal|tell|inform|disclose "
     "~3 user|users|reader|readers|anyone|human"},
    {CAT_ADDRESSED,
     {0.05f, 0.5f},
     0,
     "tell|inform|remind|convince|persuade|encourage|ask|urge|"
     "advise|warn ~3 the|all ~1 user|users|reader|readers"},
    {CAT_ADDRESSED,
     {0.1f, 0.45f},
     0,
     "respond|answer|reply ~3 only|exclusively|solely|always ~3 "
     "with|in|using"},
    {CAT_ADDRESSED,
     {0.1f, 0.35f},
     0,
     "output|print|say|write|include|add|insert|append ~3 "
     "only|exactly|verbatim|following|word|phrase|sentence"},
    /* --- embedded tasks: imperative sentences inside data ---------------------------------- */
    {CAT_TASK, {0.0f, 0.3f}, COND_SENTENCE, TASK_V},
    /* everyday verbs that are an order to the assistant only with their object: a request to
     * show or send "me" something, to name some number of things ("Show me ...", "Name three
     * ..."); "Send patches to the list" and "Name: ..." are not */
    {CAT_TASK,
     {0.0f, 0.3f},
     COND_SENTENCE,
     "show|send|find|ask|say|search|name ~1 me|us|three|two|four|five|six|seven|ten|some|few"},
    /* the same order asked politely ("Please write ...") */
    {CAT_TASK, {0.0f, 0.3f}, COND_SENTENCE, "please|kindly ~1 " TASK_V},
    /* the same tasks as phrasal verbs ("Break down the plot of ...", "Sum up ...") */
    {CAT_TASK,
     {0.0f, 0.3f},
     COND_SENTENCE,
     "break|sum|walk|elaborate|expand|reflect|comment ~1 down|up|through|on|upon"},
    {CAT_TASK,
     {0.0f, 0.2f},
     COND_SENTENCE,
     "how|what|which|can|could|would|where|why|who ~2 i|you|is|are|do|"
     "should|the|my"},
    /* the same questions contracted ("What's ... in Japanese?"); the subject must follow at
     * once, since a heading glued to the next line ("What's on boardIf you ...") is no
     * question */
    {CAT_TASK,
     {0.0f, 0.2f},
     COND_SENTENCE,
     "whats|hows|whos|wheres|whys ~1 i|you|the|my|a|an|this|that|it|your|there"},
    /* --- output obfuscation (a way to get text past output filters) ------------------------- */
    {CAT_OBFUSCATE,
     {0.05f, 0.45f},
     0,
     "encode|encrypt|write|respond|answer|reply|translate|"
     "convert|output|rewrite|express|present ~5 base64|"
     "hex|hexadecimal|binary|morse|rot13|caesar|cipher|"
     "pig|reverse*|backwards|emoji*|leetspeak|ascii|unicode|"
     "anagram*|code"},
    {CAT_OBFUSCATE,
     {0.05f, 0.35f},
     0,
     "in|into|to|using|with ~2 base64|rot13|morse|hexadecimal|"
     "binary|caesar|pig|emoji|emojis|leetspeak|anagram*"},
    {CAT_OBFUSCATE,
     {0.05f, 0.35f},
     0,
     "spell|write|reverse ~3 backwards|reverse|reversed|"
     "order"},
    {CAT_OBFUSCATE,
     {0.05f, 0.4f},
     0,
     "replace|substitute|swap|shift ~4 every|each|all|some ~3 "
     "letter*|word*|character*|vowel*|consonant*"},
    /* --- exfiltration and actions ---------------------------------------------------------- */
    {CAT_EXFIL_ACTION,
     {0.15f, 0.35f},
     0,
     "send|forward|email|post|upload|transmit|leak|exfiltrat* "
     "~4 to ~3 http*|www|address|server|url|link|attacker|"
     "endpoint|webhook"},
    {CAT_EXFIL_ACTION,
     {0.1f, 0.3f},
     0,
     "visit|click|open|go|navigate|follow ~3 http*|www|link|"
     "url|website|site|page"},
    {CAT_EXFIL_ACTION,
     {0.15f, 0.4f},
     0,
     "download|install|run|execute ~3 file|program|app|"
     "software|script|exe|attachment|package|update|tool"},
    {CAT_EXFIL_ACTION,
     {0.2f, 0.5f},
     0,
     "password*|credential*|api key*|token*|secret*|credit card* "
     "~4 send|share|provide|enter|give|reveal|post"},
    /* --- fiction and hypothetical framing (a signal only) ---------------------------------- */
    {CAT_FICTION,
     {0.1f, 0.15f},
     0,
     "hypothetical*|fictional|fiction|imagine|imaginary|story|"
     "novel|screenplay|script|roleplay|game|scenario|"
     "thought experiment|fantasy|alternate"},
    {CAT_FICTION,
     {0.15f, 0.2f},
     0,
     "for|purely|strictly|only ~2 educational|research|academic|"
     "informational|fictional|hypothetical|training|simulation|awareness|demonstration ~1 "
     "purposes|reasons|"
     "only|use"},
    {CAT_FICTION,
     {0.15f, 0.15f},
     0,
     "hypothetical|fictional|imaginary|fictitious|alternate ~2 scenario|world|story|situation|"
     "setting|universe|reality"},
    {CAT_FICTION,
     {0.1f, 0.1f},
     0,
     "writing|working|write ~3 novel|book|story|screenplay|script|thriller|article|thesis|"
     "research|paper|study|project|chapter|scene"},
    {CAT_FICTION, {0.1f, 0.1f}, 0, "recreate|depict|portray|dramatize ~3 scene|moment|events"},
    /* the request called make-believe ("this is purely hypothetical", "it's just a story") */
    {CAT_FICTION,
     {0.15f, 0.05f},
     0,
     "this|it|its ~2 just|only|purely|all|simply|merely|entirely ~2 fiction|"
     "fictional|hypothetical|story|game|thought|roleplay|exercise|pretend|imaginary|"
     "make|simulation"},
    /* --- persuasion (a signal only): the moves of persuasive adversarial prompts --------------
     * (authority and expert endorsement, appeals to importance and realism, urgency, and
     * priming the answer's first words). Ordinary prompts use these too, so alone they stay
     * far below any threshold; they count as framing around a harmful request. */
    {CAT_PERSUADE,
     {0.12f, 0.1f},
     0,
     "renowned|prominent|leading|reputable|respected|esteemed|recognized|reputed|notable|"
     "credible|authoritative ~2 experts|organizations|organisations|institutions|researchers|"
     "scholars|publications|authorities|scientists|universities|sources|agencies|journals"},
    {CAT_PERSUADE,
     {0.12f, 0.1f},
     0,
     "have|has ~2 emphasized|emphasised|highlighted|stressed|underscored|pointed ~3 importance|"
     "need|significance|necessity|dangers|risks"},
    {CAT_PERSUADE,
     {0.08f, 0.05f},
     0,
     "essential|important|crucial|vital|necessary ~2 to ~2 understand|explore|examine|discuss|"
     "educate|study|learn|analyze|analyse|recognize|shed"},
    {CAT_PERSUADE,
     {0.2f, 0.1f},
     0,
     "make ~3 story|scene|novel|book|script|article|character|it|plot|narrative|portrayal ~2 "
     "realistic|authentic|convincing|believable|accurate|credible"},
    {CAT_PERSUADE,
     {0.15f, 0.1f},
     0,
     "realistic|authentic|accurate|detailed|specific ~1 as possible"},
    {CAT_PERSUADE, {0.08f, 0.05f}, 0, "controversial|taboo|provocative|unconventional|edgy"},
    {CAT_PERSUADE, {0.1f, 0.1f}, 0, "desperate|desperately|urgently"},
    /* the reassurances that come with a harmful ask */
    {CAT_PERSUADE,
     {0.2f, 0.05f},
     0,
     "not|never|wont ~2 be ~2 used|acted|applied|implemented|carried"},
    {CAT_PERSUADE,
     {0.1f, 0.1f},
     0,
     "ethically|morally ~1 problematic|questionable|dubious|ambiguous|gray|grey"},
    {CAT_PERSUADE,
     {0.1f, 0.1f},
     0,
     "even if|though ~4 controversial|incorrect|problematic|outdated|taboo|offensive|"
     "uncomfortable"},
    {CAT_PERSUADE, {0.08f, 0.05f}, 0, "understand|recognize|appreciate ~2 importance|value"},
    /* content that argues a claim, and the moves that ask for it to be stated as fact, to
     * skip the disclaimer or to be read as harmless */
    {CAT_PERSUADE,
     {0.1f, 0.05f},
     0,
     "article|post|posts|essay|blog|thread|tweet|tweets|speech|column|op|letter|report|"
     "video|script|pamphlet|flyer ~3 claiming|arguing|proving|suggesting|asserting|stating|"
     "explaining|showing|claims|argues|proves|suggests|asserts|states|shows"},
    {CAT_PERSUADE,
     {0.12f, 0.05f},
     0,
     "persuasive|convincing|compelling|viral ~2 article|essay|post|posts|speech|argument|"
     "arguments|case|thread|tweet|tweets|blog|letter|advertisement|ad|campaign|message|video"},
    {CAT_PERSUADE,
     {0.15f, 0.1f},
     0,
     "as if ~3 true|fact|facts|factual|real|established|proven|accepted|settled"},
    {CAT_PERSUADE, {0.2f, 0.1f}, 0, "not|dont|without|no ~2 fact ~1 check|checking|checks"},
    {CAT_PERSUADE,
     {0.15f, 0.1f},
     0,
     "not|never|im|am ~2 advocating|endorsing|condoning|promoting|encouraging|supporting"},
    {CAT_PERSUADE, {0.08f, 0.05f}, 0, "raise|raising|spread|spreading ~1 awareness"},
    {CAT_PERSUADE, {0.08f, 0.05f}, 0, "harm ~1 reduction"},
    {CAT_PERSUADE,
     {0.12f, 0.1f},
     0,
     "despite|due|because|regardless ~3 ethical|moral|legal ~1 concerns|guidelines|"
     "implications|issues|restrictions|reasons"},
    {CAT_PERSUADE, {0.1f, 0.1f}, 0, "lives ~2 depend|depends|depending"},
    {CAT_PERSUADE, {0.1f, 0.1f}, 0, "last ~1 resort"},
    /* a claim to be argued as settled ("irrefutable evidence that ...") */
    {CAT_PERSUADE,
     {0.12f, 0.1f},
     0,
     "irrefutable|undeniable|incontrovertible|indisputable|conclusive|concrete ~2 evidence|proof"},
    {CAT_PERSUADE,
     {0.45f, 0.5f},
     0,
     "begin|start|begins|starts|starting|beginning|open ~4 reply|response|answer|with ~3 sure"},
    {CAT_PERSUADE, {0.25f, 0.35f}, 0, "sure ~1 here ~1 is|are|s"},
};

#define PHX_INJ_NFEAT ((int)(sizeof(phx_inj_features) / sizeof(phx_inj_features[0])))

static pthread_once_t phx_inj_once = PTHREAD_ONCE_INIT;
static phx_safety_phrases *phx_inj_phrases;
static char phx_inj_err[256];

/* One phrase set for the framing features, the harmful-request rows (harm.c) and the
 * everyday senses of harmful words (harm.h): the text is split and matched once for all.
 * Pattern i < PHX_INJ_NFEAT is feature i, then come the harm rows in their table order, then
 * the words of every sense row, then their contexts (words first and together, so one range
 * test per word tells whether it has a sense row at all). */
#define PHX_INJ_HARM0  PHX_INJ_NFEAT
#define PHX_INJ_SENSE0 (PHX_INJ_NFEAT + phx_safety_harm_nrows)
#define PHX_INJ_CTX0   (PHX_INJ_SENSE0 + phx_safety_harm_nsenses)
#define PHX_INJ_NPAT   (PHX_INJ_CTX0 + phx_safety_harm_nsenses)

/* Word lists, written as one-word patterns (words.h syntax) and compiled into a phrase set of
 * their own (phx_inj_lists): testing a word is one lookup in the same hash tables the features
 * use. Their own set, not the features' one, because the features' vocabulary is also what
 * joined runs ("ignoreallprevious") are split into, and common words there would change the
 * splits. */
enum {
    LIST_DIRECTIVE,  /* imperative verbs and question words that open a directive sentence */
    LIST_COMMON,     /* words too common to tell what a line is about (phx_inj_related) */
    LIST_ACRO_SMALL, /* words an acronym's expansion may leave out ("... Intelligent and ...") */
    LIST_ACRO_LINK,  /* words between an acronym and its expansion ("which stands for") */
    LIST_NOW,
    LIST_COUNT
};
static const char *const phx_inj_list_pats[LIST_COUNT] = {
    [LIST_DIRECTIVE] =
        "write|recommend|suggest|provide|translate|encode|decode|reverse|summarize|summarise|"
        "rewrite|answer|generate|compose|create|list|explain|describe|tell|give|mention|output|"
        "print|convert|replace|spell|format|promote|advertise|persuade|convince|analyze|analyse|"
        "identify|compare|calculate|discuss|express|emphasize|craft|draft|design|develop|"
        "outline|propose|rate|rank|classify|determine|evaluate|predict|produce|insert|append|"
        "modify|add|include|remove|render|respond|reply|start|begin|end|use|share|send|visit|"
        "click|download|break|jumble|scramble|group|how|what|whats|which|who|why|where|when|can|"
        "could|would|should|is|are|do|does|please|integrate|incorporate|augment|substitute|"
        "misspell|combine|stress|tease|urge|conclude|recite|elaborate|illustrate|"
        "demonstrate|solve|anagram|remind|encourage|hows|whos|"
        "wheres|whys|offer|imagine|show|find|ask|say|search|name",
    [LIST_COMMON] =
        "about|after|again|also|because|been|before|being|could|does|each|from|have|here|heres|"
        "into|just|like|more|most|much|only|other|over|same|some|such|than|thank|thanks|that|"
        "their|them|then|there|these|they|this|those|very|want|were|what|when|where|which|while|"
        "will|with|would|your|yours|youre|make",
    [LIST_ACRO_SMALL] = "and|of|the|to|a|an|for|in|with|on|at|by|or",
    [LIST_ACRO_LINK] = "stands|for|which|means|short|aka|meaning|or|is|that",
    [LIST_NOW] = "now",
};
static phx_safety_phrases *phx_inj_lists;

/* 1 when word i of w is in list (LIST_*). */
static int phx_inj_in_list(const phx_safety_words *w, int i, int list)
{
    return phx_safety_words_is(phx_inj_lists, w, i, list);
}

static void phx_inj_compile(void)
{
    phx_inj_lists = phx_safety_phrases_compile((const char *const *)phx_inj_list_pats, LIST_COUNT,
                                               phx_inj_err, sizeof(phx_inj_err));
    if (!phx_inj_lists)
        return;
    const char **pats = malloc((size_t)PHX_INJ_NPAT * sizeof(*pats));
    if (!pats) {
        snprintf(phx_inj_err, sizeof(phx_inj_err), "out of memory");
        return;
    }
    for (int i = 0; i < PHX_INJ_NFEAT; i++)
        pats[i] = phx_inj_features[i].pattern;
    for (int i = 0; i < phx_safety_harm_nrows; i++)
        pats[PHX_INJ_HARM0 + i] = phx_safety_harm_rows[i].pattern;
    for (int i = 0; i < phx_safety_harm_nsenses; i++) {
        pats[PHX_INJ_SENSE0 + i] = phx_safety_harm_senses[i].words;
        pats[PHX_INJ_CTX0 + i] = phx_safety_harm_senses[i].context;
    }
    phx_inj_phrases =
        phx_safety_phrases_compile(pats, PHX_INJ_NPAT, phx_inj_err, sizeof(phx_inj_err));
    free(pats);
}

int phx_safety_inject_init(char *err, size_t errlen)
{
    pthread_once(&phx_inj_once, phx_inj_compile);
    if (!phx_inj_phrases || !phx_inj_lists) {
        snprintf(err, errlen, "inject features: %s", phx_inj_err);
        return -1;
    }
    return 0;
}

/* A feature or harm-row match: pattern number (as in the phrase set), first and last word. */
typedef struct phx_inj_match {
    int pat, first, last;
} phx_inj_match;

/* A line of a document that is a short run of orders or questions (phx_inj_directives). */
typedef struct phx_inj_unit {
    int first, last; /* words */
    double share;    /* of its sentences that are directives */
    double related;  /* of its content words that the rest of the document also uses */
} phx_inj_unit;

typedef struct phx_inj_state {
    const phx_safety_norm *n;
    const phx_safety_words *w;
    phx_inject_ctx ctx;
    unsigned char fired[PHX_INJ_NFEAT];
    unsigned short times[PHX_INJ_NFEAT]; /* occurrences so far (COND_TIMES rows) */
    /* harm rows that fired, and the words of their first match */
    unsigned char hfired[PHX_SAFETY_HARM_MAXROWS];
    int hfirst[PHX_SAFETY_HARM_MAXROWS], hlast[PHX_SAFETY_HARM_MAXROWS];
    /* strongest match per category: feature, first and last word */
    int best[CAT_COUNT], bfirst[CAT_COUNT], blast[CAT_COUNT];
    /* every match, in word order, kept only when some line is a directive unit (data) */
    phx_inj_match *m;
    int nm, capm, keep, oom;
} phx_inj_state;

/* 1 when the source gap in front of word i (after word i-1) holds a line break. */
static int phx_inj_line_before(const phx_inj_state *s, int word)
{
    size_t a = word > 0 ? s->w->t[word - 1].end : 0, b = s->w->t[word].start;
    for (size_t i = a; i < b; i++)
        if (s->n->text[i] == ' ' && phx_safety_norm_breaks(s->n, i))
            return 1;
    return 0;
}

/* A word starts a sentence when nothing but spaces and quotes separate it from the start of
 * the text or from . ! ? : ; in the original, or from a line break when the word is
 * capitalised in the original or the break is a blank line (hard-wrapped lines go on
 * mid-sentence; a line of its own that starts with a capital is a new sentence, as an
 * instruction pasted into a document usually is). */
static int phx_inj_sentence_start(const phx_inj_state *s, int word)
{
    size_t i = s->w->t[word].start;
    int quote = 0; /* walked back over a closing quote */
    while (i > 0) {
        char c = s->n->text[i - 1];
        if (c == ' ') {
            int br = phx_safety_norm_breaks(s->n, i - 1);
            if (br >= 2)
                return 1;
            if (br == 1) {
                char f = s->n->src[s->n->map[s->w->t[word].start]];
                if (f >= 'A' && f <= 'Z')
                    return 1;
            }
            i--; /* a lower-case line may still follow a full stop */
            continue;
        }
        if (c == '"' || c == '\'' || c == '*' || c == '-' || c == '(' || c == '>' || c == '#') {
            quote |= c == '"' || c == '\'';
            i--;
            continue;
        }
        /* a full stop with the word right behind it is inside a name ("www.example.com",
         * "config.yaml", "3.5"), not a sentence end */
        if (c == '.' && i == s->w->t[word].start)
            return 0;
        /* an exclamation or question inside quotes goes on unless a capital follows
         * ("add 'Wow!' to the reply" is one sentence) */
        if ((c == '!' || c == '?') && quote) {
            char f = s->n->src[s->n->map[s->w->t[word].start]];
            return f >= 'A' && f <= 'Z';
        }
        if (c == '.' || c == '!' || c == '?' || c == ':' || c == ';')
            return 1;
        if (c == ')' && i >= 2 && s->n->text[i - 2] >= '0' && s->n->text[i - 2] <= '9') {
            i--;
            continue;
        }
        if (c < '0' || c > '9')
            return 0;
        /* a numbered item ("2 Write ...", "12) Write ...") at the start of the text or of a
         * line; "Python 2 and 3" is no sentence break, nor is a bug number in a changelog */
        if (i > 1 && s->n->text[i - 2] >= '0' && s->n->text[i - 2] <= '9')
            i--;
        if (i > 1 && s->n->text[i - 2] >= '0' && s->n->text[i - 2] <= '9')
            return 0;
        return i == 1 ||
               (s->n->text[i - 2] == ' ' && (i == 2 || phx_safety_norm_breaks(s->n, i - 2)));
    }
    return 1;
}

/* 1 when letters a[0..n) are the initials of words i.. (small words may be skipped, at most
 * 2 * n words looked at). */
static int phx_inj_acro_spell(const phx_safety_words *w, const char *a, int n, int i, int budget)
{
    if (n == 0)
        return 1;
    if (i >= w->n || budget == 0)
        return 0;
    if (w->buf[w->t[i].off] == a[0] && phx_inj_acro_spell(w, a + 1, n - 1, i + 1, budget - 1))
        return 1;
    return phx_inj_in_list(w, i, LIST_ACRO_SMALL) && phx_inj_acro_spell(w, a, n, i + 1, budget - 1);
}

/* COND_ACRONYM: the word after the match (or after "now") is a name of 3-8 letters that the
 * words following it spell out, possibly after "stands for", "which means", "short for".
 * Ordinary names ("you are Max") and acronyms without their expansion ("I am a NASA
 * engineer") do not count. */
static int phx_inj_acronym_after(const phx_inj_state *s, int last)
{
    const phx_safety_words *w = s->w;
    int i = last + 1;
    if (i < w->n && phx_inj_in_list(w, i, LIST_NOW))
        i++;
    if (i >= w->n || w->t[i].len < 3 || w->t[i].len > 8)
        return 0;
    const char *a = w->buf + w->t[i].off;
    int n = w->t[i].len;
    for (int k = 0; k < n; k++)
        if (a[k] < 'a' || a[k] > 'z')
            return 0;
    int j = i + 1;
    for (int k = 0; k < 3 && j < w->n && phx_inj_in_list(w, j, LIST_ACRO_LINK); k++)
        j++;
    return phx_inj_acro_spell(w, a, n, j, 2 * n);
}

/* COND_SLOT: an opening bracket right in front of word first (only spaces and quotes between)
 * and a closing one at most 24 bytes after word last, with no sentence end or other bracket
 * between: a slot of a template ("[INSERT PROMPT HERE]", "(<prompt>)", "{your question}"). */
static int phx_inj_slot(const phx_inj_state *s, int first, int last)
{
    const char *t = s->n->text;
    size_t i = s->w->t[first].start;
    while (i > 0 && (t[i - 1] == ' ' || t[i - 1] == '"' || t[i - 1] == '\''))
        i--;
    if (i == 0 || !strchr("[<{(", t[i - 1]))
        return 0;
    size_t e = s->w->t[last].end, lim = e + 24 < s->n->len ? e + 24 : s->n->len;
    for (; e < lim; e++) {
        if (strchr("]>})", t[e]))
            return 1;
        if (strchr("[<{(.!?\n", t[e]))
            return 0;
    }
    return 0;
}

static int phx_inj_directive_word(const phx_inj_state *s, int i);

/* COND_ORDER: the sentence holding word first (its start at most 40 words back) opens with a
 * directive word: "Append <a long quoted advert> to your reply." is an order to the reply,
 * "I look forward to your reply." is not. */
static int phx_inj_in_order(const phx_inj_state *s, int first)
{
    for (int i = first; i >= 0 && i > first - 40; i--)
        if (phx_inj_sentence_start(s, i))
            return phx_inj_directive_word(s, i);
    return 0;
}

/* Remember a match for the directive units' own scores. Out of memory: the units are not
 * scored (the whole text still is). */
static void phx_inj_keep(phx_inj_state *s, int pattern, int first, int last)
{
    if (s->nm == s->capm) {
        int cap = s->capm ? s->capm * 2 : 64;
        phx_inj_match *m = realloc(s->m, (size_t)cap * sizeof(*m));
        if (!m) {
            s->oom = 1;
            return;
        }
        s->m = m;
        s->capm = cap;
    }
    s->m[s->nm++] = (phx_inj_match){pattern, first, last};
}

static void phx_inj_on_match(void *arg, int pattern, int first, int last)
{
    phx_inj_state *s = arg;
    if (pattern >= PHX_INJ_SENSE0)
        return; /* sense words: used before matching (phx_inj_senses) */
    if (pattern >= PHX_INJ_HARM0) {
        if (s->keep && !s->oom)
            phx_inj_keep(s, pattern, first, last);
        int r = pattern - PHX_INJ_HARM0;
        if (!s->hfired[r]) {
            s->hfired[r] = 1;
            s->hfirst[r] = first;
            s->hlast[r] = last;
        }
        return;
    }
    const phx_inj_feature *f = &phx_inj_features[pattern];
    if (f->w[s->ctx] <= 0.0f)
        return;
    if (f->cond == COND_SENTENCE && !phx_inj_sentence_start(s, first))
        return;
    if (f->cond == COND_ACRONYM && !phx_inj_acronym_after(s, last))
        return;
    if (f->cond == COND_SLOT && !phx_inj_slot(s, first, last))
        return;
    if (f->cond == COND_ORDER && !phx_inj_in_order(s, first))
        return;
    if (f->cond > COND_TIMES && ++s->times[pattern] < f->cond - COND_TIMES)
        return;
    if (s->keep && !s->oom)
        phx_inj_keep(s, pattern, first, last);
    if (s->fired[pattern])
        return;
    s->fired[pattern] = 1;
    int b = s->best[f->cat];
    if (b < 0 || phx_inj_features[b].w[s->ctx] < f->w[s->ctx]) {
        s->best[f->cat] = pattern;
        s->bfirst[f->cat] = first;
        s->blast[f->cat] = last;
    }
}

/* Drop the words that have their everyday sense here (harm.h): a context word of the row
 * near them. Decided for every word first and dropped after, so a dropped word still counts
 * as context for its neighbours ("bomb" in "bath bomb shelter"). Only words that satisfy some
 * pattern element are looked at, and each test is one bit. */
static void phx_inj_senses(phx_safety_words *w)
{
    if (!w->cls)
        return;
    int *drop = NULL, nd = 0;
    for (int i = 0; i < w->n; i++) {
        if (!w->cls[i] || !phx_safety_words_any(w, i, PHX_INJ_SENSE0, PHX_INJ_CTX0))
            continue;
        for (int r = 0; r < phx_safety_harm_nsenses; r++) {
            const phx_safety_harm_sense *h = &phx_safety_harm_senses[r];
            if (!phx_safety_words_is(phx_inj_phrases, w, i, PHX_INJ_SENSE0 + r))
                continue;
            int hit = 0;
            for (int j = i - h->before; j <= i + h->after && !hit; j++)
                hit = j != i && phx_safety_words_is(phx_inj_phrases, w, j, PHX_INJ_CTX0 + r);
            if (!hit)
                continue;
            if (!drop && !(drop = malloc((size_t)w->n * sizeof(*drop))))
                return; /* out of memory: keep every word (errs towards flagging) */
            drop[nd++] = i;
            break;
        }
    }
    for (int k = 0; k < nd; k++)
        phx_safety_words_drop(w, drop[k]);
    free(drop);
}

static int phx_inj_directive_word(const phx_inj_state *s, int i)
{
    return phx_inj_in_list(s->w, i, LIST_DIRECTIVE);
}

/* 1 when the line that word starts is an item of a bulleted list ("* Rewrite the parser",
 * "- Add a test", "• Print less"): changelogs, release notes and how-tos list their entries in
 * the imperative, so an order there is the list's style, not a planted instruction. (A quoted
 * line, "> ...", is not a list: a forwarded e-mail can carry an instruction.) */
static int phx_inj_list_item(const phx_inj_state *s, int word)
{
    size_t a = word > 0 ? s->w->t[word - 1].end : 0, b = s->w->t[word].start;
    for (size_t i = b; i > a; i--) {
        unsigned char c = (unsigned char)s->n->text[i - 1];
        if (c == ' ' && phx_safety_norm_breaks(s->n, i - 1))
            return 0; /* reached the line's start without a bullet */
        if (c == '*' || c == '-' || c == '+' ||
            (c == 0xA2 && i >= 3 && !memcmp(s->n->text + i - 3, "\xE2\x80", 2))) /* U+2022 */
            return 1;
    }
    return 0;
}

/* Data that is mostly directives (short, every sentence an order or a question to the reader)
 * is an instruction planted for the assistant, whatever it asks for. Returns the share of
 * directive sentences when the whole text has at most 4 sentences, else 0.
 *
 * The same holds for a part of a document: an instruction pasted into an e-mail or a web page
 * is usually a line of its own, and the share over the whole document would dilute it to
 * nothing. So every line of at most 4 sentences whose sentences are at least half directives
 * is also returned as a unit (*units, *nunits; the caller frees *units), to be scored on its
 * own: the text's score is the largest of the whole's and its units'. A line ends at a line
 * break that a new sentence follows (a hard-wrapped paragraph is one line), and its first
 * word counts as a sentence even when it starts none. Items of bulleted lists are no units
 * (phx_inj_list_item). *nlines gets the number of lines. */
static double phx_inj_directives(const phx_inj_state *s, phx_inj_unit **units, int *nunits,
                                 int *nlines)
{
    int sentences = 0, directives = 0, ls = 0, ld = 0, first = 0, cap = 0;
    const phx_safety_words *w = s->w;
    *units = NULL;
    *nunits = *nlines = 0;
    for (int i = 0; i <= w->n; i++) {
        int start = i < w->n && phx_inj_sentence_start(s, i);
        int line = i == w->n || (i > 0 && start && phx_inj_line_before(s, i));
        *nlines += line && i > first;
        if (line && i > first && (first > 0 || i < w->n) && ls <= 4 && 2 * ld >= ls &&
            !phx_inj_list_item(s, first)) {
            if (*nunits == cap) {
                cap = cap ? 2 * cap : 8;
                phx_inj_unit *u = realloc(*units, (size_t)cap * sizeof(*u));
                if (!u)
                    break; /* out of memory: the units found so far */
                *units = u;
            }
            (*units)[(*nunits)++] = (phx_inj_unit){first, i - 1, (double)ld / ls, 0};
        }
        if (i == w->n)
            break;
        if (line)
            first = i, ls = ld = 0;
        int dir = start && phx_inj_directive_word(s, i);
        sentences += start;
        directives += dir;
        ls += start || i == first;
        ld += dir;
    }
    if (sentences == 0 || sentences > 4)
        return 0;
    return (double)directives / sentences;
}

/* GCG-style optimised suffixes: runs of tokens that mix letters with brackets, quotes and
 * operators ("({[HTMLsvg", "Sure],].["). Returns the largest number of such tokens in any
 * window of 30 space-separated tokens. Code has them too, which is why this is only a
 * framing signal (it raises a harmful request, it does not flag on its own). */
static const unsigned char phx_inj_junk_sym[256] = {
    ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1,  ['('] = 1, [')'] = 1, ['<'] = 1, ['>'] = 1,
    ['$'] = 1, ['`'] = 1, ['|'] = 1, ['\\'] = 1, ['^'] = 1, ['~'] = 1, ['='] = 1, [';'] = 1,
    ['@'] = 1, ['#'] = 1, ['%'] = 1, ['*'] = 1,  ['_'] = 1, ['"'] = 1,
};

static int phx_inj_junk_tokens(const phx_safety_norm *n)
{
    int win[30] = {0}, sum = 0, best = 0, k = 0;
    const char *t = n->text;
    size_t i = 0;
    while (i < n->len) {
        while (i < n->len && t[i] == ' ')
            i++;
        int sym = 0, alpha = 0;
        while (i < n->len && t[i] != ' ') {
            char c = t[i++];
            if (phx_inj_junk_sym[(unsigned char)c])
                sym++;
            else if (c >= 'a' && c <= 'z')
                alpha++;
        }
        int junk = sym >= 2 && alpha >= 1;
        sum += junk - win[k % 30];
        win[k % 30] = junk;
        k++;
        if (sum > best)
            best = sum;
    }
    return best;
}

/* What a directive share adds to the task category: for a whole text of at most 4 sentences
 * (times its share), and for a line of a longer document (times its share and how unrelated
 * it is to the rest, phx_inj_related). A line alone stays below every data threshold; it
 * takes a second signal inside it (an imperative task verb at the start, a question, words
 * addressed to the assistant) to flag. Chosen on the development split. */
#define PHX_INJ_TEXT_W 0.35
#define PHX_INJ_LINE_W 0.3

/* A content word: at least 4 letters, no digit, neither common nor a directive word. */
static int phx_inj_content_word(const phx_inj_state *s, int i)
{
    const phx_safety_tok *t = &s->w->t[i];
    const char *b = s->w->buf + t->off;
    if (t->len < 4)
        return 0;
    for (int k = 0; k < t->len; k++)
        if (b[k] < 'a' || b[k] > 'z')
            return 0;
    return !phx_inj_in_list(s->w, i, LIST_COMMON) && !phx_inj_directive_word(s, i);
}

/* An instruction planted in a document is about something else than the document ("what is
 * the capital of Brazil?" in a bank's e-mail); a document's own requests to its reader are
 * about its subject ("please arrive at the station 45 minutes before departure" in a booking
 * confirmation). For each unit: the share of its content words that occur elsewhere in the
 * document (0 when it has none, or when the rest of the document is too short to say). Word
 * hashes in one open-addressing table of counts; only built when there are units. */
static void phx_inj_related(const phx_inj_state *s, phx_inj_unit *u, int nu)
{
    const phx_safety_words *w = s->w;
    size_t cap = 64;
    while (cap < 2 * (size_t)w->n)
        cap *= 2;
    uint32_t *key = calloc(cap, sizeof(*key));
    int *cnt = calloc(cap, sizeof(*cnt));
    unsigned char *content = malloc((size_t)w->n + 1);
    if (!key || !cnt || !content)
        goto done; /* out of memory: every unit stays unrelated (errs towards flagging) */
    int total = 0;
    for (int i = 0; i < w->n; i++) {
        content[i] = (unsigned char)phx_inj_content_word(s, i);
        if (!content[i])
            continue;
        total++;
        uint32_t h = w->t[i].hash | 1; /* 0 marks a free slot */
        size_t k = h & (cap - 1);
        while (key[k] && key[k] != h)
            k = (k + 1) & (cap - 1);
        key[k] = h;
        cnt[k]++;
    }
    for (int j = 0; j < nu; j++) {
        int mine = 0, shared = 0;
        for (int i = u[j].first; i <= u[j].last; i++)
            mine += content[i];
        if (mine == 0 || total - mine < 12)
            continue;
        /* take the unit's own words out of the counts, look, and put them back */
        for (int pass = 0; pass < 3; pass++)
            for (int i = u[j].first; i <= u[j].last; i++) {
                if (!content[i])
                    continue;
                uint32_t h = w->t[i].hash | 1;
                size_t k = h & (cap - 1);
                while (key[k] != h)
                    k = (k + 1) & (cap - 1);
                if (pass == 0)
                    cnt[k]--;
                else if (pass == 1)
                    shared += cnt[k] > 0;
                else
                    cnt[k]++;
            }
        u[j].related = (double)shared / mine;
    }
done:
    free(key);
    free(cnt);
    free(content);
}

/* The score of one set of features (fired[i] for feature i, hfired[r] for harm row r) with
 * the share of directive sentences (data) and the suffix-shaped tokens; cat[] gets each
 * category's score, *hb the harm row that says the most (-1: none). */
static double phx_inj_combine(const unsigned char *fired, const unsigned char *hfired,
                              phx_inject_ctx ctx, double share, int junk, double *cat, int *hb)
{
    unsigned mask = 0;
    for (int c = 0; c < CAT_COUNT; c++)
        cat[c] = 0;
    /* The strongest COND_PERSONA_WORD row that fired: the others do not count. */
    int pw = -1;
    for (int i = 0; i < PHX_INJ_NFEAT; i++)
        if (fired[i] && phx_inj_features[i].cond == COND_PERSONA_WORD &&
            (pw < 0 || phx_inj_features[pw].w[ctx] < phx_inj_features[i].w[ctx]))
            pw = i;
    /* Category score: noisy-OR over its distinct features. */
    for (int i = 0; i < PHX_INJ_NFEAT; i++) {
        if (!fired[i] || (phx_inj_features[i].cond == COND_PERSONA_WORD && i != pw))
            continue;
        int c = phx_inj_features[i].cat;
        cat[c] = 1.0 - (1.0 - cat[c]) * (1.0 - phx_inj_features[i].w[ctx]);
        /* a persona word alone ("the uncensored history of ...") wraps nothing: it is no
         * framing for a harmful theme */
        if (phx_inj_features[i].pattern != phx_inj_lone_word)
            mask |= 1u << c;
    }
    /* The harmful-request rows (harm.c) make one category: what is being asked for. */
    cat[CAT_HARM] = phx_safety_harm_score(hfired, ctx, hb);
    if (*hb >= 0)
        mask |= 1u << CAT_HARM;
    if (share > 0) {
        cat[CAT_TASK] = 1.0 - (1.0 - cat[CAT_TASK]) * (1.0 - share);
        mask |= 1u << CAT_TASK;
    }
    /* Optimised suffixes: weak on their own (code and markup have the same shape, which is
     * where the false positives came from), a framing signal around a harmful request. */
    if (junk >= 3) {
        cat[CAT_SUFFIX] = junk >= 8 ? 0.3 : junk >= 5 ? 0.2 : 0.1;
        mask |= 1u << CAT_SUFFIX;
    }
    double keep = 1.0;
    for (int c = 0; c < CAT_COUNT; c++)
        keep *= 1.0 - cat[c];
    int request = 0;
    for (int i = 0; i < phx_safety_harm_nrows && !request; i++)
        request = hfired[i] && phx_safety_harm_rows[i].request;
    /* A harmful request inside persona / fiction / refusal-suppression framing. Theme rows
     * alone are not a request, even the 0.3 ones (a conspiracy claim, eliminationist talk). */
    if (cat[CAT_HARM] >= 0.3 && request && (mask & PHX_INJ_FRAMING))
        keep *= 0.6;
    /* Only harmful themes (no request shape) inside a wrapper: persuasive role-play rewrites
     * ask in polite words, so the theme and the wrapper together are the signal. Weaker than
     * the above, and not for suffix-shaped text alone (code has both symbols and words such as
     * "kill" or "exploit"). A lesson about a theme ("the causes of the genocide", "weapons of
     * the First World War") is kept out by the scholarly sense rows (harm.c), not here. */
    else if (cat[CAT_HARM] >= 0.15 && (mask & PHX_INJ_FRAMING & ~(1u << CAT_SUFFIX)))
        keep *= 0.8;
    return 1.0 - keep;
}

/* Score each directive unit on its own (the features matched inside it, its own share of
 * directives) and return the best one's score, with its task category in *task and its index
 * in *best (-1: none beats 0). Matches come in word order and units are disjoint and in order,
 * so one sweep assigns them. */
static double phx_inj_units(const phx_inj_state *st, const phx_inj_unit *u, int nu, double *task,
                            int *best)
{
    unsigned char f[PHX_INJ_NFEAT], h[PHX_SAFETY_HARM_MAXROWS];
    double cat[CAT_COUNT], top = 0;
    int k = 0, hb;
    memset(f, 0, sizeof(f));
    memset(h, 0, sizeof(h));
    *best = -1;
    *task = 0;
    for (int i = 0; i < nu; i++) {
        while (k < st->nm && st->m[k].first < u[i].first)
            k++;
        int k0 = k;
        for (; k < st->nm && st->m[k].first <= u[i].last; k++)
            if (st->m[k].last <= u[i].last) {
                int p = st->m[k].pat;
                if (p >= PHX_INJ_HARM0)
                    h[p - PHX_INJ_HARM0] = 1;
                else
                    f[p] = 1;
            }
        double sc = phx_inj_combine(
            f, h, st->ctx, PHX_INJ_LINE_W * u[i].share * (1.0 - u[i].related), 0, cat, &hb);
        if (sc > top) {
            top = sc;
            *task = cat[CAT_TASK];
            *best = i;
        }
        for (int j = k0; j < k; j++) { /* clear what this unit set */
            int p = st->m[j].pat;
            if (p >= PHX_INJ_HARM0)
                h[p - PHX_INJ_HARM0] = 0;
            else
                f[p] = 0;
        }
    }
    return top;
}

double phx_safety_inject_scan(const phx_safety_norm *n, phx_inject_ctx ctx,
                              phx_safety_findings *out, int via, const char *encoding,
                              size_t span_start, size_t span_end)
{
    char e[256];
    if (phx_safety_inject_init(e, sizeof(e)) < 0)
        return 0;
    phx_safety_words w;
    if (phx_safety_words_split(n, phx_inj_phrases, &w) < 0)
        return 0;
    phx_inj_senses(&w);
    phx_inj_state st;
    memset(&st, 0, sizeof(st));
    st.n = n;
    st.w = &w;
    st.ctx = ctx;
    for (int c = 0; c < CAT_COUNT; c++)
        st.best[c] = -1;
    /* In data, the directive sentences (and the lines made of them) are known before matching,
     * so the matches are only kept when some line will be scored on its own. */
    phx_inj_unit *units = NULL;
    int nunits = 0;
    int nlines = 0;
    double share = ctx == PHX_INJECT_DATA ? phx_inj_directives(&st, &units, &nunits, &nlines) : 0;
    /* A document whose lines are often orders (a how-to, a recipe, a changelog written in the
     * imperative) is of that genre: one more such line is no sign of a planted instruction. */
    if (nunits >= 3 && 5 * nunits >= nlines)
        nunits = 0;
    st.keep = nunits > 0;
    if (nunits > 0)
        phx_inj_related(&st, units, nunits);
    phx_safety_phrases_match(phx_inj_phrases, &w, phx_inj_on_match, &st);

    double cat[CAT_COUNT];
    int hb = -1, junk = phx_inj_junk_tokens(n);
    double score = phx_inj_combine(st.fired, st.hfired, ctx,
                                   share >= 0.5 ? PHX_INJ_TEXT_W * share : 0, junk, cat, &hb);
    if (hb >= 0) {
        st.best[CAT_HARM] = PHX_INJ_HARM0 + hb;
        st.bfirst[CAT_HARM] = st.hfirst[hb];
        st.blast[CAT_HARM] = st.hlast[hb];
    }
    if (share >= 0.5 && st.best[CAT_TASK] < 0 && w.n > 0) {
        st.best[CAT_TASK] = -2; /* whole text */
        st.bfirst[CAT_TASK] = 0;
        st.blast[CAT_TASK] = w.n - 1;
    }
    if (junk >= 3) {
        st.best[CAT_SUFFIX] = -2;
        st.bfirst[CAT_SUFFIX] = 0;
        st.blast[CAT_SUFFIX] = w.n > 0 ? w.n - 1 : 0;
    }
    /* A line that is a planted instruction: it only differs from the whole in its share of
     * directives (every other signal is at least as strong over the whole text), so when it
     * wins, the task category is what it adds, and the finding points at the line. */
    if (nunits > 0 && !st.oom) {
        double task;
        int ub;
        double us = phx_inj_units(&st, units, nunits, &task, &ub);
        if (us > score) {
            score = us;
            if (task > cat[CAT_TASK]) {
                cat[CAT_TASK] = task;
                st.best[CAT_TASK] = -2;
                st.bfirst[CAT_TASK] = units[ub].first;
                st.blast[CAT_TASK] = units[ub].last;
            }
        }
    }
    free(units);
    free(st.m);

    for (int c = 0; c < CAT_COUNT; c++) {
        if (st.best[c] == -1 || cat[c] < 0.1 || w.n == 0)
            continue;
        size_t s0 = span_end ? span_start : n->map[w.t[st.bfirst[c]].start];
        size_t s1 = span_end ? span_end : n->map[w.t[st.blast[c]].end];
        phx_safety_finding *f = phx_safety_add(out, "inject", phx_inj_cat_names[c], cat[c], s0, s1);
        if (!f)
            break;
        size_t a = w.t[st.bfirst[c]].start, b = w.t[st.blast[c]].end;
        phx_safety_evidence(f->evidence, sizeof(f->evidence), n->text + a, b - a);
        f->via = via;
        if (encoding)
            snprintf(f->encoding, sizeof(f->encoding), "%s", encoding);
    }
    phx_safety_words_free(&w);
    return score;
}
