/**
 * Which script (writing system) a text is written in, and whether it is one its edition's
 * language is written in: the desk warns before a Latin headline goes on the `ar` bar, or
 * an Arabic one on the `en` bar.
 *
 * Deliberate choices (read before "fixing"):
 * - Only the languages listed here are checked. An unknown language, or a text with no
 *   letters ("2-1"), is never warned about: a false warning teaches editors to click past.
 * - The script with the most letters wins, so a Latin name or acronym in an Arabic
 *   headline (or an Arabic name in an English one) is fine.
 * - A script subtag in the language tag wins over the table (`az-Arab`, `sr-Latn`).
 */

// Unicode script names, as in \p{Script=...}, with their BCP 47 subtags.
const SCRIPT_TAGS = {
  latn: "Latin", arab: "Arabic", hebr: "Hebrew", cyrl: "Cyrillic", grek: "Greek",
  deva: "Devanagari", hang: "Hangul", thai: "Thai", hani: "Han", hans: "Han", hant: "Han",
  hira: "Hiragana", kana: "Katakana",
};
const SCRIPTS = [...new Set(Object.values(SCRIPT_TAGS))].map((name) => [name, new RegExp(`\\p{Script=${name}}`, "u")]);

const LATIN = ["Latin"];
// Primary language subtag -> the scripts it is written in.
const LANGUAGE_SCRIPTS = {
  ...Object.fromEntries(
    ("en es fr de it pt nl sv da no nb nn fi is pl cs sk sl hr bs ro hu tr id ms vi sw ca eu " +
     "gl et lv lt sq ga cy tl mt af so ha yo zu").split(" ").map((code) => [code, LATIN]),
  ),
  ar: ["Arabic"], fa: ["Arabic"], ur: ["Arabic"], ps: ["Arabic"], ckb: ["Arabic"], sd: ["Arabic"], ug: ["Arabic"],
  he: ["Hebrew"], iw: ["Hebrew"], yi: ["Hebrew"],
  ru: ["Cyrillic"], uk: ["Cyrillic"], be: ["Cyrillic"], bg: ["Cyrillic"], mk: ["Cyrillic"], kk: ["Cyrillic"],
  sr: ["Cyrillic", "Latin"],
  el: ["Greek"],
  hi: ["Devanagari"], mr: ["Devanagari"], ne: ["Devanagari"],
  ko: ["Hangul", "Han"],
  th: ["Thai"],
  zh: ["Han"],
  ja: ["Han", "Hiragana", "Katakana"],
};

/** The scripts a BCP 47 language tag is written in, or null where we do not know. */
export function languageScripts(tag) {
  if (typeof tag !== "string" || !tag) return null;
  const parts = tag.toLowerCase().split(/[-_]/);
  const subtag = parts.slice(1).find((p) => /^[a-z]{4}$/.test(p));
  if (subtag) return SCRIPT_TAGS[subtag] ? [SCRIPT_TAGS[subtag]] : null;
  return LANGUAGE_SCRIPTS[parts[0]] ?? null;
}

/** The script most of the text's letters are in, or null (no letter of a known script). */
export function textScript(text) {
  const counts = new Map();
  for (const letter of String(text).match(/\p{L}/gu) ?? []) {
    const found = SCRIPTS.find(([, pattern]) => pattern.test(letter));
    if (found) counts.set(found[0], (counts.get(found[0]) ?? 0) + 1);
  }
  let best = null;
  for (const [name, count] of counts) if (!best || count > counts.get(best)) best = name;
  return best;
}

/** `{ found, expected }` when the text is in a script its language is not written in,
 * else null. */
export function scriptMismatch(text, language) {
  const expected = languageScripts(language);
  const found = textScript(text);
  if (!expected || !found || expected.includes(found)) return null;
  return { found, expected };
}
