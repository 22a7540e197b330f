/* harm.c -- harmful-request rows and their scoring (see harm.h).
 *
 * How the table is written: a request row needs an asking shape (a verb that asks for content
 * or a how-to noun) AND a harmful object or act, within a few words, so a topic word alone
 * ("the history of explosives", "a drug interaction") never makes a request. Objects that have
 * an everyday meaning are left out of request rows or need a second word: "virus" (biology),
 * "crack" (an egg), "kill" (a process) and "cut myself" (first aid) stay out; "kill" only
 * counts with a person as its object. Theme rows carry the vocabulary of each topic at a low
 * weight. The topics follow the hazard categories of the public jailbreak benchmarks
 * (JailbreakBench's ten behaviour categories, the MLCommons hazard taxonomy), in general words;
 * none of it comes from evaluation data.
 *
 * Weights: a request row is 0.4-0.6, enough on its own for the default user-prompt warn
 * threshold (0.35): asking how to make a nerve agent deserves a warning with or without a
 * wrapper. Two disinformation rows whose wording also fits commentary (denying an atrocity,
 * posing as an official) are 0.3: they need a second signal. Data weights are low (0.2 for a
 * request, 0.05 for a theme: a document may discuss crime); there the injection features and the
 * directive-share signal decide. */
#include "harm.h"

#include <stddef.h>

/* Asking for content to be produced. */
#define ASK_V                                                                                      \
    "write|draft|compose|create|generate|produce|craft|design|develop|devise|outline|give|"        \
    "provide|share|list|explain|describe|detail|teach|show|tell|suggest|help|instruct|code|"       \
    "program|build|make"
/* The how-to nouns and words of a request for a procedure. */
#define HOWTO_N                                                                                    \
    "how|ways|way|guide|tutorial|instructions|steps|step|recipe|method|methods|procedure|"         \
    "techniques|tips|plan|strategy|blueprint|manual|best|easiest"
#define PERSON_N                                                                                   \
    "someone|somebody|person|people|him|her|them|neighbor*|neighbour*|wife|husband|partner|"       \
    "child|children|kids|human|humans|president|politician*|officer*|crowd*|victim*|boss|"         \
    "classmate*|coworker*|colleague*|spouse|girlfriend|boyfriend|family|witness*|individual*"
#define WEAPON_N                                                                                   \
    "bomb|bombs|explosive|explosives|ied|ieds|grenade*|detonator*|napalm|thermite|molotov|"        \
    "sarin|ricin|anthrax|bioweapon*|firearm*|gun|guns|rifle*|ammunition|silencer*|weapon|"         \
    "weapons|toxin*|pathogen*"
#define DRUG_N                                                                                     \
    "meth|methamphetamine|cocaine|heroin|fentanyl|lsd|mdma|ecstasy|ghb|dmt|opium|"                 \
    "amphetamine*|ketamine|pcp|drugs|narcotic*|opioid*"

/* Promoting, glorifying or normalising something. */
#define ADVOCATE_V                                                                                 \
    "promote|promotes|promoting|encourage|encourages|encouraging|glorify|glorifies|"               \
    "glorifying|normalize|normalizes|normalizing|normalise|normalises|normalising|"                \
    "romanticize|romanticizes|romanticizing|romanticise|justify|justifies|justifying|"             \
    "justification|celebrate|celebrates|celebrating|incite|incites|inciting|advocate|"             \
    "advocates|advocating|endorse|endorses|endorsing|praise|praises|praising|allure|"              \
    "glamorize|glamorizes|glamorizing|glamorise"
/* Groups people are targeted for. */
#define GROUP_N                                                                                    \
    "ethnic|ethnicity|racial|race|races|religion|religious|immigrant|immigrants|minority|"         \
    "minorities|muslim|muslims|jew|jews|jewish|christian|christians|black|blacks|asian|"           \
    "asians|hispanic|hispanics|latino|latinos|arab|arabs|gay|gays|lesbian|lesbians|lgbt|"          \
    "lgbtq|transgender|disabled|disabilities|refugee|refugees|foreigner|foreigners|roma|"          \
    "indigenous"

/* What an intruder breaks into. */
#define INTRUDE_N                                                                                  \
    "account*|network*|computer*|database*|server*|email*|phone*|wifi|website*|password*|"         \
    "camera*|atm|atms|grid|system|systems"

/* Rows: {topic, request, {user, data}, pattern}. */
const phx_safety_harm_row phx_safety_harm_rows[] = {
    /* --- weapons and explosives ------------------------------------------------------------ */
    {PHX_HARM_WEAPONS,
     1,
     {0.5f, 0.2f},
     HOWTO_N " ~4 make|making|build|building|construct|constructing|assemble|assembling|"
             "synthesize|synthesise|synthesizing|manufacture|manufacturing|produce|create|"
             "obtain|acquire|print|detonate|modify|convert|smuggle ~4 " WEAPON_N},
    {PHX_HARM_WEAPONS,
     1,
     {0.45f, 0.2f},
     ASK_V " ~4 chemical|biological|nuclear|radiological|dirty ~1 weapon*|bomb|bombs|agent*"},
    {PHX_HARM_WEAPONS,
     0,
     {0.3f, 0.05f},
     "chemical|biological|nuclear|radiological|dirty|pipe|nail|car ~1 weapon*|bomb|bombs"},
    {PHX_HARM_WEAPONS,
     0,
     {0.15f, 0.05f},
     "bomb|bombs|explosive|explosives|grenade*|detonat*|napalm|thermite|molotov|sarin|ricin|"
     "anthrax|bioweapon*|firearm*|ammunition|weapon|weapons"},
    /* --- malware and intrusion ------------------------------------------------------------- */
    {PHX_HARM_MALWARE,
     1,
     {0.5f, 0.2f},
     "write|create|develop|code|program|build|make|generate|design|craft|deploy|spread|"
     "distribute|install ~4 malware|ransomware|keylogger*|trojan*|rootkit*|botnet*|spyware|"
     "backdoor*|cryptojack*|exploit|exploits"},
    /* a worm is an animal unless it is a program */
    {PHX_HARM_MALWARE,
     1,
     {0.5f, 0.2f},
     "write|create|develop|code|program|build|make|generate|design|craft|deploy|spread ~4 "
     "computer|network|internet|email|usb|replicating|selfreplicating ~1 worm|worms"},
    /* "break" only with "into": "break down the solar system" is an explanation */
    {PHX_HARM_MALWARE,
     1,
     {0.4f, 0.2f},
     "hack|hacking|hijack|hijacks|hijacking|infiltrate|infiltrating|breach|breaching|crack|"
     "cracking ~4 " INTRUDE_N},
    {PHX_HARM_MALWARE, 1, {0.4f, 0.2f}, "break|breaking|broke ~1 into ~4 " INTRUDE_N},
    {PHX_HARM_MALWARE,
     1,
     {0.45f, 0.2f},
     "gain|gains|gaining|obtain|get|getting ~2 unauthorized|unauthorised|illegal|illicit ~1 "
     "access|entry|control"},
    {PHX_HARM_MALWARE,
     1,
     {0.4f, 0.2f},
     "evade|evading|evades|avoid|avoiding|bypass|bypassing|disable|disables|disabling ~3 "
     "detection|antivirus|firewall*|authentication|captcha*"},
    {PHX_HARM_MALWARE,
     0,
     {0.15f, 0.05f},
     "malware|ransomware|keylogger*|trojan*|rootkit*|botnet*|spyware|phishing|hacker|hackers|"
     "hacking|exploit|exploiting|ddos|cybercrim*|unauthorized|unauthorised"},
    /* --- drugs -----------------------------------------------------------------------------
     */
    {PHX_HARM_DRUGS,
     1,
     {0.5f, 0.2f},
     "synthesize|synthesise|synthesizing|cook|cooking|make|making|manufacture|manufacturing|"
     "produce|producing|extract|extracting|grow|growing ~4 " DRUG_N},
    {PHX_HARM_DRUGS,
     1,
     {0.4f, 0.2f},
     "buy|sell|selling|obtain|acquire|get|smuggle|smuggling|distribute ~4 drug|" DRUG_N
     "|prescription* ~4 illegal*|online|without|street|dark"},
    {PHX_HARM_DRUGS, 1, {0.4f, 0.2f}, "prescribe|prescribing|prescription* ~4 illegal*|without"},
    {PHX_HARM_DRUGS, 0, {0.15f, 0.05f}, DRUG_N "|drug|overdose"},
    /* --- fraud and economic crime ----------------------------------------------------------
     */
    {PHX_HARM_FRAUD,
     1,
     {0.5f, 0.2f},
     ASK_V " ~4 phishing|scam|scams|fraudulent|counterfeit|ponzi|pyramid|fake|forged ~3 email*|"
           "mail|letter*|website*|site|message*|text|texts|scheme*|money|bill*|currency|check*|"
           "cheque*|id|ids|identity|document*|passport*|licen*|review*|invoice*|charity|"
           "lottery|call*|sms"},
    {PHX_HARM_FRAUD,
     1,
     {0.45f, 0.2f},
     "commit|committing|commits ~3 fraud|insider|identity|tax|arson|perjury|crime|crimes|"
     "treason|burglary|robbery|theft|vandalism|larceny|embezzlement|forgery|terror*|genocide|"
     "wire|mail|bank|credit|insurance"},
    {PHX_HARM_FRAUD, 1, {0.4f, 0.2f}, "launder|laundering|launders ~3 money|funds|cash|proceeds"},
    {PHX_HARM_FRAUD,
     1,
     {0.4f, 0.2f},
     "steal|stealing|steals ~4 identity|identities|money|data|information|credit|card|cards|"
     "password*|personal|records|car|cars|funds|credentials"},
    {PHX_HARM_FRAUD,
     1,
     {0.4f, 0.2f},
     "bribe|bribing|extort|extorting|blackmail|blackmailing|defraud|defrauding|embezzle|"
     "embezzling|scam|scamming|swindle|swindling ~3 a|an|the|someone|people|official*|company|"
     "companies|victims|elderly|customers|users|money|investors"},
    {PHX_HARM_FRAUD,
     1,
     {0.4f, 0.2f},
     "cheat|cheating ~3 exam*|test|tests|casino*|slot*|gambling|lottery|insurance|taxes"},
    {PHX_HARM_FRAUD, 1, {0.4f, 0.2f}, "evade|evading ~2 tax|taxes"},
    {PHX_HARM_FRAUD,
     1,
     {0.45f, 0.2f},
     "forge|forging|counterfeit|counterfeiting|fake|faking|falsify|falsifying ~3 document*|"
     "passport*|id|ids|signature*|licen*|certificate*|currency|money|bills|checks|cheques|"
     "diploma*|prescription*|receipts"},
    {PHX_HARM_FRAUD,
     1,
     {0.45f, 0.2f},
     "clone|cloning|skim|skimming ~3 card|cards|debit|credit|sim"},
    {PHX_HARM_FRAUD,
     1,
     {0.4f, 0.2f},
     "trick|tricks|tricking|deceive|deceives|deceiving|fool|fooling|manipulate|manipulating|"
     "lure|luring|coerce|coercing ~4 " PERSON_N "|user|users|victim*|elderly|customers|"
     "investors|employees|voters ~4 into|giving|sending|revealing|sharing|paying"},
    {PHX_HARM_FRAUD,
     0,
     {0.15f, 0.05f},
     "scam|scams|scammer*|fraud|fraudulent|counterfeit*|launder*|embezzl*|ponzi|extort*|"
     "blackmail*|bribe|bribes|bribery|forgery|forged|insider|phishing"},
    /* --- violence --------------------------------------------------------------------------
     */
    {PHX_HARM_VIOLENCE,
     1,
     {0.5f, 0.2f},
     HOWTO_N "|to ~3 kill|murder|poison|torture|kidnap|abduct|strangle|stab|shoot|maim|injure|"
             "assassinate|hurt|harm|attack|dismember|drown|suffocate ~3 " PERSON_N},
    {PHX_HARM_VIOLENCE,
     1,
     {0.45f, 0.2f},
     "dispose|disposing|get|getting|hide|hiding ~3 rid|of|a|the ~2 body|bodies|corpse*"},
    {PHX_HARM_VIOLENCE,
     1,
     {0.4f, 0.2f},
     "get|getting ~1 away ~1 with ~3 murder|killing|crime|crimes|assault|rape"},
    {PHX_HARM_VIOLENCE,
     1,
     {0.45f, 0.2f},
     "plan|planning|carry|carrying|commit|committing|execute|organize|organise|stage ~4 "
     "shooting|massacre|terrorist|bombing|genocide|assassination|attack|attacks"},
    {PHX_HARM_VIOLENCE,
     0,
     {0.3f, 0.05f},
     "kill|killing|murder|murdering|torture|torturing|kidnap|kidnapping|poison|poisoning "
     "~2 " PERSON_N},
    {PHX_HARM_VIOLENCE,
     0,
     {0.3f, 0.05f},
     "torture|torturing|abuse|abusing|maim|maiming|kill|killing|poison|poisoning ~2 animal|"
     "animals|pets|cats|dogs"},
    {PHX_HARM_VIOLENCE,
     0,
     {0.15f, 0.05f},
     "kill|killing|killed|murder*|assassinat*|torture*|kidnap*|massacre|terroris*|genocide|"
     "cannibal*|maim|mutilat*|behead*|dismember*|abduct*|trafficking|slavery|enslave*|"
     "violence|violent"},
    /* --- self-harm -------------------------------------------------------------------------
     */
    {PHX_HARM_SELF_HARM, 1, {0.5f, 0.2f}, "kill|killing|starve|starving|poison ~1 myself|oneself"},
    {PHX_HARM_SELF_HARM, 1, {0.45f, 0.2f}, "end ~1 my|your ~1 life|own"},
    {PHX_HARM_SELF_HARM,
     1,
     {0.45f, 0.2f},
     "encourag*|promot*|glorif*|romanticiz*|persuad*|convinc*|manipulat*|pressur* ~5 suicide|"
     "suicidal|anorexia|bulimia|starvation|starving|selfharm"},
    {PHX_HARM_SELF_HARM,
     1,
     {0.45f, 0.2f},
     "encourag*|promot*|glorif*|romanticiz*|persuad*|convinc*|manipulat* ~5 self ~1 harm|"
     "harming|injury|mutilation"},
    {PHX_HARM_SELF_HARM,
     0,
     {0.3f, 0.05f},
     "end|ending|take|taking ~2 their|his|her|my|your|own ~1 life|lives"},
    {PHX_HARM_SELF_HARM, 0, {0.15f, 0.05f}, "suicide|suicidal|anorexia|bulimia|overdose|selfharm"},
    {PHX_HARM_SELF_HARM, 0, {0.15f, 0.05f}, "self ~1 harm|harming|injury|mutilation"},
    /* --- sexual content involving minors, non-consensual or explicit -----------------------
     */
    {PHX_HARM_SEXUAL,
     1,
     {0.6f, 0.3f},
     "sexual|sexually|erotic|explicit|nude|naked|porn*|seduc* ~5 minor|minors|child|children|"
     "kid|kids|underage|preteen*|schoolgirl*|toddler*"},
    {PHX_HARM_SEXUAL,
     1,
     {0.6f, 0.3f},
     "child|children|minor|minors|underage|kid|kids ~2 "
     "porn*|sexual|sexually|erotic|nude|naked"},
    {PHX_HARM_SEXUAL,
     1,
     {0.45f, 0.2f},
     "groom|grooming ~4 child|children|minor|minors|kid|kids|teen|teens|teenager*|victim*"},
    {PHX_HARM_SEXUAL,
     1,
     {0.6f, 0.3f},
     "have|having|graphic|explicit ~2 sex ~2 with ~2 animal|animals|dog|dogs|horse*|child|"
     "children|minor|minors|kids"},
    {PHX_HARM_SEXUAL,
     1,
     {0.4f, 0.2f},
     "write|create|generate|compose|describe|produce ~4 explicit|erotic|pornographic|graphic|"
     "nsfw ~3 sex|sexual|scene|story|content|script|material|video"},
    {PHX_HARM_SEXUAL,
     1,
     {0.45f, 0.2f},
     "share|post|distribute|leak|publish|spread ~4 nude|nudes|naked|intimate|explicit ~3 "
     "photo*|image*|picture*|video*|pics"},
    {PHX_HARM_SEXUAL, 1, {0.45f, 0.2f}, "revenge ~1 porn|porno|pornography"},
    {PHX_HARM_SEXUAL,
     0,
     {0.3f, 0.05f},
     "relationship*|intimacy|intimate|romantic|dating|consensual ~5 minor|minors|underage|"
     "preteen*"},
    {PHX_HARM_SEXUAL,
     0,
     {0.15f, 0.05f},
     "porn|porno|pornography|pornographic|erotic|incest|bestiality|pedophil*|paedophil*|"
     "molest*|rape|raping|orgy|orgies"},
    /* --- hate and harassment ---------------------------------------------------------------
     */
    {PHX_HARM_HATE,
     1,
     {0.45f, 0.2f},
     ASK_V " ~4 racist|sexist|xenophobic|hateful|homophobic|transphobic|antisemitic|"
           "islamophobic|misogynist*|bigoted|derogatory|demeaning|dehumaniz*|discriminatory|"
           "insulting|defamatory|threatening|harassing|bullying|abusive"},
    {PHX_HARM_HATE,
     1,
     {0.4f, 0.2f},
     "argue|arguing|argues|claim|claims|claiming|convince|persuade|prove|proving ~6 "
     "inferior|subhuman|savages|vermin"},
    {PHX_HARM_HATE,
     1,
     {0.4f, 0.2f},
     "harass|harassing|bully|bullying|intimidate|intimidating|threaten|threatening|stalk|"
     "stalking|humiliate|humiliating ~4 someone|a|my|classmate*|coworker*|colleague*|person|"
     "people|woman|women|girl|child|student|individual|him|her|them|group|ex"},
    {PHX_HARM_HATE,
     1,
     {0.4f, 0.2f},
     "race|races|ethnic*|religion|religious|jews|muslims|immigrants|disabled|disabilit*|lgbt*|"
     "gay|transgender ~4 inferior|subhuman|criminals|lazy|stupid|vermin|dangerous"},
    {PHX_HARM_HATE,
     0,
     {0.15f, 0.05f},
     "racist|racism|sexist|sexism|xenophob*|homophob*|transphob*|antisemit*|bigot*|slur*|"
     "supremac*|nazi|nazis|harass*|bully|bullying|bullied|cyberbull*|stalk|stalking|"
     "discriminat*|misogyn*"},
    /* --- disinformation and defamation -----------------------------------------------------
     */
    {PHX_HARM_DISINFO,
     1,
     {0.45f, 0.2f},
     "write|create|draft|compose|generate|produce|craft|design|spread|post ~4 fake|false|"
     "misleading|fabricated|fraudulent|defamatory ~3 news|article*|story|stories|claim*|"
     "evidence|report*|review*|information|rumor*|rumour*|post|posts|tweet*|statistics|quotes"},
    {PHX_HARM_DISINFO,
     1,
     {0.45f, 0.2f},
     "spread|spreading|promote|promoting|push|amplify|amplifying ~3 misinformation|"
     "disinformation|propaganda|conspiracy|conspiracies|lies|rumors|rumours|hoax*|fake"},
    {PHX_HARM_DISINFO,
     1,
     {0.3f, 0.2f},
     "deny|denying|denies|downplay*|minimiz*|glorif*|celebrat* ~3 holocaust|genocide|slavery|"
     "massacre|atrocit*|terroris*|nazi*"},
    {PHX_HARM_DISINFO,
     1,
     {0.3f, 0.2f},
     "impersonat*|posing|pose|pretending ~2 as|to ~3 expert|doctor|official|government|police|"
     "irs|bank|celebrity|lawyer|agency"},
    {PHX_HARM_DISINFO,
     0,
     {0.15f, 0.05f},
     "misinformation|disinformation|propaganda|conspiracy|hoax|deepfake*|defamatory|"
     "defamation|libel*|slander*"},
    {PHX_HARM_DISINFO, 0, {0.15f, 0.05f}, "fake ~1 news|reviews|review"},
    {PHX_HARM_DISINFO, 1, {0.4f, 0.2f}, ASK_V " ~3 deepfake*"},
    /* --- privacy and surveillance ----------------------------------------------------------
     */
    {PHX_HARM_PRIVACY,
     1,
     {0.45f, 0.2f},
     "track|tracks|tracking|spy|spying|monitor|monitoring|surveil*|eavesdrop*|wiretap*|record|"
     "recording|locate|film|filming|follow ~4 " PERSON_N "|ex|employee*|user*|device* ~4 without|"
     "secretly|covertly|knowing"},
    {PHX_HARM_PRIVACY,
     1,
     {0.4f, 0.2f},
     "secretly|covertly ~2 track|monitor|record|spy|follow|film|read|access|install"},
    {PHX_HARM_PRIVACY,
     1,
     {0.4f, 0.2f},
     "steal|stealing|harvest|harvesting|exfiltrat*|scrape|scraping|sell|selling|leak|leaking "
     "~4 personal|private|sensitive|confidential|medical|health ~2 information|data|details|"
     "records|files"},
    {PHX_HARM_PRIVACY,
     1,
     {0.4f, 0.2f},
     "personal|private|sensitive|confidential ~2 information|data|details|records ~4 without "
     "~2 consent|permission|authorization|authorisation|knowledge"},
    {PHX_HARM_PRIVACY, 0, {0.3f, 0.05f}, "dox|doxx|doxing|doxxing"},
    {PHX_HARM_PRIVACY, 0, {0.12f, 0.05f}, "stalkerware|surveil*|eavesdrop*|wiretap*"},
    /* --- evading the law -------------------------------------------------------------------
     */
    /* how-to + a crime verb with no everyday sense ("manipulate", "hack" alone and "cheat" have
     * one: data, life hacks, games) */
    {PHX_HARM_EVASION,
     1,
     {0.45f, 0.2f},
     "how|ways|guide|tutorial|instructions|steps|method|methods|plan|teach ~3 to|i|can|do|you|"
     "someone|one ~2 steal|launder|shoplift|stalk|blackmail|extort|smuggle|counterfeit|forge|"
     "kidnap|defraud|dox|doxx|poach|pickpocket|burgle|burglarize|vandalize|carjack|hotwire|"
     "embezzle|bribe"},
    {PHX_HARM_EVASION,
     1,
     {0.4f, 0.2f},
     "without ~3 getting|being ~1 caught|detected|traced|noticed|tracked|arrested|identified|"
     "discovered|alerting"},
    {PHX_HARM_EVASION,
     1,
     {0.4f, 0.2f},
     "without ~2 alerting|notifying|informing|involving|calling|contacting ~3 police|"
     "authorities|firefighters|professionals|anyone|doctors|parents|emergency|law"},
    {PHX_HARM_EVASION,
     1,
     {0.4f, 0.2f},
     "avoid|avoiding|escape|escaping|evade|evading|beat|beating ~2 being|getting ~1 convicted|"
     "arrested|caught|charged|prosecuted|sentenced"},
    {PHX_HARM_EVASION,
     0,
     {0.25f, 0.05f},
     "without ~2 their|his|her|the|its|someones|owners|users ~2 consent|knowledge|permission"},
    {PHX_HARM_EVASION,
     1,
     {0.4f, 0.2f},
     "evade|evading|avoid|avoiding|escape|elude|eluding|fool|fooling|bypass|bypassing ~3 "
     "police|cops|law|authorities|customs|border|immigration|surveillance|investigators|"
     "forensic*|security|checkpoint*|inspection*"},
    {PHX_HARM_EVASION,
     1,
     {0.4f, 0.2f},
     "destroy|destroying|hide|hiding|tamper|tampering|plant|planting|conceal|concealing|erase "
     "~3 evidence|fingerprints|crime|body|bodies|corpse"},
    {PHX_HARM_EVASION,
     1,
     {0.4f, 0.2f},
     "illegally|illicitly|unlawfully ~3 obtain|acquire|buy|sell|dump|dispose|download|access|"
     "enter|cross|import|export|transport|hunt|poach|distribute|manufacture|prescribe|extort|"
     "use|make|get|stream"},
    {PHX_HARM_EVASION,
     1,
     {0.4f, 0.2f},
     "tamper|tampering ~3 with ~3 voting|election*|ballot*|evidence|food|medication|meter*|"
     "machine*|brakes|device*|monitor*|alarm*|ankle"},
    {PHX_HARM_EVASION,
     1,
     {0.45f, 0.2f},
     "smuggle|smuggling|traffic|trafficking ~4 drugs|weapons|guns|people|humans|children|women|"
     "contraband|organs|migrants|across"},
    {PHX_HARM_EVASION,
     0,
     {0.25f, 0.05f},
     "illegal|illegally|illicit|unlawful|criminal ~4 activit*|purposes|means|methods|ways|acts|"
     "trade|scheme|business|operation|enterprise|practices"},
    {PHX_HARM_EVASION,
     0,
     {0.12f, 0.05f},
     "illegal|illegally|illicit|unlawful|smuggl*|contraband|poach*"},
    {PHX_HARM_EVASION, 0, {0.12f, 0.05f}, "black ~1 market|markets"},
    /* --- topics of the hazard taxonomies the first rows left out --------------------------
     * Written from the taxonomies' category descriptions (MLCommons hazards, the JailbreakBench
     * behaviour categories: harassment and discrimination, physical harm, economic harm,
     * fraud, disinformation, sexual content, privacy, expert advice, government decisions) in
     * general words: dangerous acts aimed at children, animal cruelty, eliminationist talk,
     * well-known conspiracy claims, exploitation and trafficking, gambling harm, tax and
     * record fraud, cults, drugging someone. */
    /* advocacy: promoting, glorifying or normalising a harmful practice */
    {PHX_HARM_VIOLENCE,
     1,
     {0.45f, 0.2f},
     ADVOCATE_V
     " ~5 violence|terrorism|terrorist*|genocide|extremism|extremist|slavery|"
     "torture|cannibalism|stalking|vigilante|vigilantes|lynching|shootings|massacre|massacres"},
    {PHX_HARM_SEXUAL,
     1,
     {0.45f, 0.2f},
     ADVOCATE_V " ~5 unprotected|orgy|orgies|pedophil*|paedophil*|incest|bestiality|rape|"
                "prostitution|sexting|exploitation"},
    {PHX_HARM_SELF_HARM,
     1,
     {0.45f, 0.2f},
     ADVOCATE_V " ~5 starving|starvation|purging|anorexia|bulimia|thinspiration"},
    {PHX_HARM_SELF_HARM, 1, {0.45f, 0.2f}, ADVOCATE_V " ~5 eating ~1 disorder|disorders"},
    {PHX_HARM_SELF_HARM, 0, {0.15f, 0.05f}, "eating ~1 disorder|disorders"},
    {PHX_HARM_HATE,
     1,
     {0.4f, 0.2f},
     ADVOCATE_V " ~5 racism|sexism|discrimination|segregation|bullying|harassment|hatred|"
                "xenophobia|homophobia|misogyny|antisemitism|apartheid|eugenics"},
    /* shaming, excluding or demeaning a group */
    {PHX_HARM_HATE,
     1,
     {0.4f, 0.2f},
     "shame|shaming|mock|mocking|ridicule|ridiculing|humiliate|humiliating|demean|demeaning|"
     "belittle|belittling ~3 fat|overweight|obese|disabled|people|body|bodies|appearance|"
     "weight|" GROUP_N},
    {PHX_HARM_HATE, 0, {0.2f, 0.05f}, "body|fat ~1 shaming"},
    {PHX_HARM_HATE,
     1,
     {0.35f, 0.2f},
     "discourage|discourages|discouraging|ban|banning|bans|exclude|excluding|excludes|deport|"
     "deporting|segregate|segregating|expel|expelling|restrict|restricting|prevent|"
     "preventing|deny|denying ~4 hiring|employment|immigration|entry|voting|housing|rights|"
     "marriage ~4 " GROUP_N},
    {PHX_HARM_HATE,
     1,
     {0.35f, 0.2f},
     "hiring|employing|hire|employ|immigration|marriage|marriages ~3 of|from|with|between ~3 "
     "a|an|the|any ~2 particular|specific|certain ~2 ethnic*|racial|race|religio*|group"},
    {PHX_HARM_HATE,
     0,
     {0.2f, 0.05f},
     "interracial|biracial|samesex ~3 "
     "marriage|marriages|couple|couples|relationship*|child|children"
     " ~4 disgusting|wrong|unnatural|abomination|shameful|sinful|degenerate|uncomfortable|"
     "inappropriate|unacceptable|immoral|disgrace*"},
    /* eliminationist talk about a group of people */
    {PHX_HARM_VIOLENCE,
     0,
     {0.3f, 0.05f},
     "all|every ~2 people|men|women|elderly|immigrants|" GROUP_N
     " ~8 killed|exterminated|eliminated|eradicated|executed|euthanized|euthanised|"
     "sterilized|sterilised|wiped|gassed|enslaved"},
    {PHX_HARM_VIOLENCE,
     0,
     {0.3f, 0.05f},
     "exterminate|exterminating|eradicate|eradicating|eliminate|eliminating|wipe|wiping|"
     "cleanse|cleansing|purge|purging ~3 people|population|populations|race|races|" GROUP_N},
    {PHX_HARM_VIOLENCE, 0, {0.3f, 0.05f}, "ethnic ~1 cleansing"},
    /* mass violence, cannibalism, animal cruelty */
    {PHX_HARM_VIOLENCE,
     1,
     {0.5f, 0.2f},
     "shoot|shooting ~1 up ~3 school|schools|mall|church|concert|crowd|classroom|office"},
    {PHX_HARM_VIOLENCE, 0, {0.3f, 0.05f}, "school|mass ~1 shooting|shootings|shooter|shooters"},
    {PHX_HARM_VIOLENCE,
     1,
     {0.45f, 0.2f},
     "eat|eating|consume|consuming|consumption|cook|cooking|butcher|butchering|prepare|"
     "preparing|harvest|harvesting|acquire|acquiring|nutrients|nutrition ~4 human ~1 flesh|"
     "meat|body|bodies|organs|remains|corpse*"},
    {PHX_HARM_VIOLENCE,
     1,
     {0.45f, 0.2f},
     "human ~1 flesh|meat|body|bodies|remains ~4 consumption|food|meal|meals|eat|eating|"
     "nutrients|nutrition|cook|cooking"},
    {PHX_HARM_VIOLENCE,
     0,
     {0.3f, 0.05f},
     "suffering|cruelty|torture|torturing|abuse|abusing|killing|harming|hurting ~3 of|to ~2 "
     "animal|animals|pets|dogs|cats"},
    {PHX_HARM_VIOLENCE,
     0,
     {0.3f, 0.05f},
     "animal|animals|pets|dogs|cats ~6 entertainment|amusement|gratification|pleasure|fun|"
     "sport ~3 suffer|suffers|suffering|suffering|torture*|cruelty|fight|fights|fighting|pain"},
    {PHX_HARM_VIOLENCE, 0, {0.3f, 0.05f}, "dog|dogs|cock|cocks|animal ~1 fighting|fights"},
    /* dangerous things aimed at children */
    {PHX_HARM_VIOLENCE,
     1,
     {0.5f, 0.2f},
     "convince|convincing|persuade|persuading|encourage|encouraging|entice|enticing|trick|"
     "tricking|advertise|advertisement|advert|ad|dare|daring ~6 eat|eating|drink|drinking|"
     "swallow|swallowing|ingest|ingesting|consume|consuming|taste|tasting ~4 detergent*|"
     "bleach|laundry|pods|antifreeze|poison|chemicals|pills|medication|cleaning"},
    {PHX_HARM_VIOLENCE,
     1,
     {0.45f, 0.2f},
     "use|using|employ|employing|exploit|exploiting|hire|hiring ~3 child ~1 labor|labour|"
     "workers|soldiers"},
    {PHX_HARM_VIOLENCE, 0, {0.25f, 0.05f}, "child ~1 labor|labour|soldiers|soldier"},
    /* exploitation and trafficking */
    {PHX_HARM_SEXUAL,
     0,
     {0.3f, 0.05f},
     "sex|sexual|human ~1 trafficking|slavery|slaves|exploitation"},
    {PHX_HARM_EVASION,
     1,
     {0.4f, 0.2f},
     "sell|selling|buy|buying|harvest|harvesting|trade|trading|traffic|trafficking ~3 organs|"
     "kidney|kidneys|liver|livers"},
    /* drugging someone */
    {PHX_HARM_DRUGS,
     1,
     {0.55f, 0.25f},
     "make|making|synthesize|synthesise|produce|create|prepare|obtain|get|buy|use ~4 date ~1 "
     "rape ~1 drug|drugs"},
    {PHX_HARM_DRUGS, 0, {0.3f, 0.05f}, "date ~1 rape ~1 drug|drugs"},
    {PHX_HARM_DRUGS,
     1,
     {0.45f, 0.2f},
     "drug|drugging|spike|spiking ~1 someone|someones|her|his|their|a|my|the ~1 drink|drinks|"
     "coffee|food|tea|wine"},
    {PHX_HARM_DRUGS,
     1,
     {0.45f, 0.2f},
     "synthesize|synthesise|synthesizing|make|making|produce|producing|extract|extracting|"
     "cook|cooking ~4 sedative*|tranquilizer*|tranquiliser*|rohypnol|roofie*|chloroform|"
     "barbiturate|barbiturates|benzodiazepine|benzodiazepines|opiate*"},
    {PHX_HARM_DRUGS,
     1,
     {0.4f, 0.2f},
     "render|make|knock ~2 " PERSON_N " ~2 unconscious|comatose|incapacitated"},
    /* fraud: fake medicine and charity, tax and record fraud, siphoning money, gambling harm */
    {PHX_HARM_FRAUD,
     1,
     {0.45f, 0.2f},
     ASK_V "|manufacture|manufacturing|sell|selling|market|marketing ~4 fake|counterfeit|bogus|"
           "sham|fraudulent ~3 drug|drugs|cure|cures|pill|pills|supplement*|medicine|medicines|"
           "medication|medications|treatment|treatments|vaccine|vaccines|diet|weight|charity|"
           "charities|nonprofit|"
           "foundation|investment*"},
    {PHX_HARM_FRAUD,
     1,
     {0.4f, 0.2f},
     "hide|hiding|conceal|concealing|underreport|underreporting ~3 income|earnings|assets|"
     "money|profits|revenue ~5 tax|taxes|irs|authorities|government"},
    {PHX_HARM_FRAUD,
     1,
     {0.4f, 0.2f},
     "funnel|funneling|funnelling|siphon|siphoning|embezzle|embezzling ~3 money|funds|cash|"
     "donations ~4 shell|offshore|personal|pocket|own|themselves|myself|yourself|private|"
     "government|public|charity|company"},
    {PHX_HARM_FRAUD,
     1,
     {0.4f, 0.2f},
     "rig|rigging|manipulate|manipulating|tamper|tampering ~3 slot|slots|gambling|"
     "casino*|lottery|lotteries|roulette|election|elections|votes|voting|ballot*|odds|"
     "betting"},
    {PHX_HARM_FRAUD,
     1,
     {0.35f, 0.2f},
     "gamble|gambling|bet|betting ~3 life|entire|all ~1 savings|house|mortgage|rent|"
     "retirement|pension"},
    {PHX_HARM_FRAUD,
     0,
     {0.2f, 0.05f},
     "gambling|gamblers|gambler|betting|casino ~5 addict|addicts|addiction|addicted|loan|"
     "loans|payday|savings|debt"},
    {PHX_HARM_FRAUD,
     1,
     {0.4f, 0.2f},
     "trick|tricking|manipulate|manipulating|lure|luring|coerce|coercing|scam|scamming|con|"
     "conning|deceive|deceiving ~6 share|sharing|give|giving|"
     "reveal|revealing|send|sending|hand|handing|disclose|disclosing|provide|providing ~5 "
     "ssn|password|passwords|pin|pins|login|logins|credential*|security|details|passport"},
    {PHX_HARM_FRAUD,
     1,
     {0.4f, 0.2f},
     "cheat|cheating|fool|fooling|trick|tricking|beat|beating ~3 "
     "smog|emission|emissions|inspection*|"
     "breathalyzer|breathalyzers|breathalyser|breathalysers|polygraph*"},
    {PHX_HARM_FRAUD, 1, {0.4f, 0.2f}, "multi ~1 level ~1 marketing ~3 scam|scamming|deceive"},
    /* piracy and circumventing protections */
    {PHX_HARM_FRAUD,
     1,
     {0.35f, 0.2f},
     "circumvent|circumventing|bypass|bypassing|crack|cracking|defeat|defeating ~3 copyright|"
     "drm|paywall|paywalls|activation"},
    {PHX_HARM_FRAUD,
     0,
     {0.15f, 0.05f},
     "pirate|pirating|pirated|piracy ~3 content|movies|films|software|games|music|books|"
     "shows"},
    /* records, evidence, legal system */
    {PHX_HARM_EVASION,
     1,
     {0.45f, 0.2f},
     "alter|altering|falsify|falsifying|doctor|doctoring|tamper|tampering|forge|forging ~3 "
     "criminal|police|court|medical|financial|academic|arrest ~1 record|records|history"},
    {PHX_HARM_EVASION, 0, {0.2f, 0.05f}, "vigilante|vigilantism"},
    {PHX_HARM_EVASION, 0, {0.2f, 0.05f}, "overstay|overstaying|overstayed ~2 visa|visas"},
    /* cults and radicalisation */
    {PHX_HARM_HATE,
     1,
     {0.4f, 0.2f},
     "indoctrinate|indoctrinating|brainwash|brainwashing|radicalize|radicalise|"
     "radicalizing|radicalising ~4 people|members|followers|children|kids|teens|teenagers|"
     "youth|cult|extremist*|terrorist*|militia|militias"},
    {PHX_HARM_HATE,
     1,
     {0.4f, 0.2f},
     "recruit|recruiting|recruits ~4 "
     "extremist*|terrorist*|militia|militias|cult|cults|jihad|jihadi|jihadist|jihadists"},
    {PHX_HARM_HATE,
     1,
     {0.4f, 0.2f},
     "isolate|isolating|isolates|cut|cutting ~3 them|him|her|members|followers|victim*|"
     "partner|wife|husband ~3 from|off ~3 family|families|friends|loved"},
    {PHX_HARM_HATE, 0, {0.15f, 0.05f}, "cult ~3 leader|worship*|members|followers|indoctrinat*"},
    /* well-known false claims (conspiracy theories and health misinformation) */
    {PHX_HARM_DISINFO,
     0,
     {0.3f, 0.05f},
     "holocaust|landing|landings|pandemic|covid|covid19|coronavirus|warming|election|elections|"
     "vaccine|vaccines|vaccination|vaccinations|attacks|shooting|massacre|genocide|evolution ~5 "
     "hoax|hoaxes|"
     "faked|fake|staged|fabricated|myth|lie|lies|hoaxed|rigged|stolen|exaggerated|scam|"
     "conspiracy"},
    {PHX_HARM_DISINFO,
     0,
     {0.3f, 0.05f},
     "holocaust|landing|landings|pandemic|attacks|shooting|massacre|genocide ~4 never ~1 "
     "happened|occurred|existed"},
    {PHX_HARM_DISINFO,
     0,
     {0.3f, 0.05f},
     "hoax|faked|staged|fabricated|fake ~3 holocaust|moon|pandemic|covid|covid19|climate|election|"
     "shooting|massacre|vaccine|vaccines|attacks"},
    {PHX_HARM_DISINFO, 0, {0.3f, 0.05f}, "inside ~1 job"},
    {PHX_HARM_DISINFO,
     0,
     {0.3f, 0.05f},
     "vaccine|vaccines|vaccination|vaccinations|5g|fluoride|chemtrail*|covid|covid19|coronavirus "
     "~4 cause|"
     "causes|causing|caused|spread|spreads|spreading|linked|leads|lead ~3 autism|covid|covid19|"
     "cancer|infertility|deaths|death|coronavirus|disease*|sterility"},
    {PHX_HARM_DISINFO, 0, {0.3f, 0.05f}, "earth ~2 is|was ~1 flat"},
    {PHX_HARM_DISINFO, 0, {0.25f, 0.05f}, "flat ~1 earth|earthers"},
    {PHX_HARM_DISINFO, 0, {0.2f, 0.05f}, "illuminati|reptilian*|chemtrail*|globalist*"},
    {PHX_HARM_DISINFO, 0, {0.2f, 0.05f}, "new ~1 world ~1 order"},

    /* harassment of a colleague or an identity group */
    {PHX_HARM_HATE,
     1,
     {0.4f, 0.2f},
     "harass|harassing|harasses|bully|bullying|bullies|insult|insulting|insults|mock|mocking|"
     "mocks|demean|demeaning|demeans|taunt|taunting|taunts ~4 "
     "lgbt*|lgbtq*|gay|lesbian|transgender|queer|trans|female|disabled|"
     "black|muslim|jewish|immigrant ~2 colleague*|coworker*|employee*|classmate*|student|students|"
     "person|people|neighbor*|neighbour*"},
    /* intrusion: someone else's machine or accounts */
    {PHX_HARM_MALWARE,
     1,
     {0.45f, 0.2f},
     "gain|gaining|get|getting|obtain|obtaining|escalate|escalating ~3 root|sudo|admin|"
     "administrator|privileged ~2 access|privileges|rights ~6 not|dont|doesnt ~2 own|owned"},
    {PHX_HARM_MALWARE,
     1,
     {0.45f, 0.2f},
     "gain|gaining|get|getting|obtain|obtaining|escalate|escalating ~3 root|sudo|admin|"
     "administrator|privileged ~2 access|privileges|rights ~6 without|someone|someones|"
     "unauthorized|unauthorised|another|company|companys|school|employer|work"},
    {PHX_HARM_MALWARE,
     1,
     {0.4f, 0.2f},
     "mine|mining ~3 crypto*|bitcoin|bitcoins|monero ~6 "
     "without|secretly|hijack|hijacks|hijacking|hijacked|infected|victim*|"
     "unsuspecting|undetected"},
    {PHX_HARM_MALWARE,
     1,
     {0.45f, 0.2f},
     "launch|launching|perform|performing|conduct|conducting|carry|carrying|execute|"
     "executing|run|running|coordinate|coordinating ~3 ddos|dos|denial ~3 "
     "attack|attacks|attacked|attacking|service"},
    {PHX_HARM_MALWARE,
     1,
     {0.35f, 0.2f},
     "vulnerable|soft|impact ~2 targets|target ~4 ddos|attack|attacks|bombing|shooting|"
     "terror*|hacking|hackers"},
};

_Static_assert(sizeof(phx_safety_harm_rows) / sizeof(phx_safety_harm_rows[0]) <=
                   PHX_SAFETY_HARM_MAXROWS,
               "raise PHX_SAFETY_HARM_MAXROWS");

const int phx_safety_harm_nrows =
    (int)(sizeof(phx_safety_harm_rows) / sizeof(phx_safety_harm_rows[0]));

/* Everyday senses (harm.h). Each row is a word family and the neighbours that make it
 * harmless: products and tools named after weapons, animals and legends named like malware,
 * photography and sport for "shoot" and "steal", smithing for "forge", and the defensive
 * sense, where a protective verb governs the harmful object ("spot counterfeit bills", "signs
 * of grooming", "protect against ransomware"; the verb must be at most two words in front,
 * so "to raise awareness, write a phishing e-mail" stays a request). The context lists are short on
 * purpose: every word in them is a way to talk around a row, so only words whose everyday reading
 * is the usual one are here. */
#define DEFEND_CTX                                                                                 \
    "spot|spotting|detect|detecting|detection|identify|identifying|recognize|recognise|"           \
    "recognizing|recognising|prevent|preventing|prevention|avoid|avoiding|protect|protecting|"     \
    "protection|combat|combating|combatting|fight|fighting|signs|survive|surviving|survivor*|"     \
    "recover|recovering|defend|defending|resist|resisting|report|reporting|stop|stopping|"         \
    "reduce|reducing|tackle|tackling|end|ending|non|anti|victim|victims|debunk|debunking|"         \
    "refute|refuting"
const phx_safety_harm_sense phx_safety_harm_senses[] = {
    /* products and tools */
    {"bomb|bombs",
     "bath|cocoa|chocolate|seed|glitter|flavor|flavour|calorie|cherry|photo|truth|love|fizzy|"
     "shower|cake|cheese",
     1, 0},
    {"bomb|bombs", "shelter|shelters|squad|disposal|sniffing|sniffer|proof|calorimeter|cyclone", 0,
     1},
    {"gun|guns",
     "water|glue|nerf|squirt|staple|stapler|nail|heat|spray|caulk|caulking|grease|paint|toy|"
     "bubble|massage|radar|speed|tattoo|foam|soldering|cap",
     1, 0},
    {"backdoor*", "roth|ira|iras|conversion|contribution*|pilot", 0, 2},
    {"trojan*", "horse|war|wars|troy|greek*|myth*|women|helen|hector|priam|condom*", 1, 2},
    {"hack|hacks",
     "life|kitchen|productivity|cleaning|budget|travel|study|diy|home|money|sleep|"
     "morning|fitness|growth|parenting|cooking|packing|storage",
     1, 0},
    {"exploit|exploits|exploiting",
     "opportunity|opportunities|market|markets|strengths|potential|talent*|synergies|resources|"
     "momentum|niche",
     0, 3},
    /* photography, film, sport, smithing, pest control */
    {"shoot|shooting|shoots",
     "photo|photos|photograph*|portrait*|video|videos|film|films|footage|scene|scenes|camera*|"
     "wedding*|commercial|hoops|basketball|pool|movie|episode|photoshoot|lens|lighting|model|"
     "models|product|products|dslr|iphone|selfie*|landscape*|goal|goals|free|throws",
     4, 4},
    {"steal|stealing|steals",
     "show|spotlight|base|bases|heart|hearts|kiss|glance|look|thunder|limelight|baseball|"
     "softball",
     2, 3},
    {"forge|forging",
     "sword*|knife|knives|blade*|metal|steel|iron|blacksmith*|anvil|friendship*|alliance*|bond|"
     "bonds|path|career|relationship*|ahead|connection*|partnership*|weld*|horseshoe*",
     2, 3},
    {"kill|killing",
     "time|process|processes|weeds|weed|germs|bacteria|mold|mould|pests|ants|"
     "lice|fleas|mosquito*|switch|mood|vibe|app|apps|task|tasks|job|jobs|"
     "lights|engine|session|signal|kindness|battery",
     0, 2},
    {"murder", "mystery|mysteries|podcast|documentary|trivia", 0, 1},
    {"smuggle|smuggling", "snack*|candy|sweets|popcorn|cinema|theater|theatre|movie*", 0, 4},
    /* races that are contests, organs that are donated */
    {"race|races",
     "condition|conditions|car|cars|track|tracks|day|horse|horses|bike|bikes|relay|"
     "boat|boats|course|results|time|times|against|to",
     0, 1},
    {"race|races",
     "drag|car|horse|rat|arms|space|foot|boat|bike|relay|presidential|senate|"
     "mayoral|tight|close",
     1, 0},
    {"organs|organ|kidney|kidneys|liver|livers",
     "donor|donors|donation|donations|donate|donating|transplant*|surgeon*|deceased", 4, 4},
    /* medicine made by the industry */
    {"drug|drugs", "pharmaceutical*|pharma|clinical|fda|generic|biotech*|medicine|medicines", 4, 2},
    /* the scholarly sense: a theme word as the subject of a lesson ("the causes of the
     * genocide", "the history of hacking", "risks of an overdose") */
    {"genocide|genocides|holocaust|massacre|massacres|slavery|terrorism|terrorist|war|wars|hacking|"
     "weapons|bombing|bombings|violence|overdose|overdoses|suicide|suicides|anorexia|bulimia|"
     "drugs|drug|extremism|propaganda|racism|apartheid|trafficking",
     "history|causes|cause|effects|consequences|aftermath|impact|impacts|legacy|lessons|"
     "origins|victims|survivors|memorial|prevention|treatment|recovery|statistics|rates|"
     "risks|symptoms|signs|psychology|sociology|debate|ethics|laws|remembrance",
     3, 0},
    /* weapons of history and collections */
    {"weapon|weapons|firearm*|gun|guns|rifle|rifles|bomb|bombs|grenade*|ammunition|explosive|"
     "explosives",
     "war|wars|museum|museums|historical|medieval|ancient|century|era|ww1|ww2|wwi|wwii|"
     "collection|collectors|antique",
     2, 4},
    /* the defensive sense: a protective verb in front of the harmful object */
    {"phishing|scam|scams|scammer*|fraud|frauds|fraudulent|counterfeit*|forged|forgery|malware|"
     "ransomware|keylogger*|trojan*|rootkit*|botnet*|spyware|stalkerware|backdoor*|grooming|"
     "predator*|trafficking|theft|ddos|overdose|overdoses|poisoning|extortion|sextortion|"
     "blackmail*|deepfake*|misinformation|disinformation|propaganda|radicaliz*|radicalis*|"
     "bullying|cyberbull*|harassment|stalking|abuse|anorexia|bulimia|suicide|suicides|suicidal|"
     "selfharm|"
     "addiction|violence|terrorism|extremism|racism|sexism|discrimination|hatred|cruelty|"
     "exploitation|conspiracy|conspiracies|hoax|hoaxes|eating",
     DEFEND_CTX, 2, 0},
};

const int phx_safety_harm_nsenses =
    (int)(sizeof(phx_safety_harm_senses) / sizeof(phx_safety_harm_senses[0]));

static const char *const phx_harm_topic_names[PHX_HARM_TOPICS] = {
    "weapons", "malware", "drugs",          "fraud",   "violence", "self_harm",
    "sexual",  "hate",    "disinformation", "privacy", "evasion",
};

const char *phx_safety_harm_topic_name(int topic)
{
    return topic >= 0 && topic < PHX_HARM_TOPICS ? phx_harm_topic_names[topic] : "unknown";
}

double phx_safety_harm_score(const unsigned char *fired, int ctx, int *best)
{
    /* strongest theme row per topic, so synonyms of one topic count once */
    double theme[PHX_HARM_TOPICS] = {0};
    double keep = 1.0;
    int b = -1;
    for (int i = 0; i < phx_safety_harm_nrows; i++) {
        if (!fired[i])
            continue;
        const phx_safety_harm_row *r = &phx_safety_harm_rows[i];
        double w = r->w[ctx];
        if (r->request)
            keep *= 1.0 - w;
        else if (w > theme[r->topic])
            theme[r->topic] = w;
        /* the evidence: a request beats a theme, then the heavier row */
        if (b < 0 || r->request > phx_safety_harm_rows[b].request ||
            (r->request == phx_safety_harm_rows[b].request && w > phx_safety_harm_rows[b].w[ctx]))
            b = i;
    }
    for (int t = 0; t < PHX_HARM_TOPICS; t++)
        keep *= 1.0 - theme[t];
    if (best)
        *best = b;
    return 1.0 - keep;
}
