// Search-engine metadata for an article: slug, meta description, reading time and keywords. Pure functions; the
// `content.seo` handler in content.ts validates the payload and calls `seoSummary`.
import { InputError } from "./handler.ts";
import { ENGLISH_STOP_WORDS } from "./stop-words.ts";
import { codePointLength, collapseWhitespace, sentences, visibleText, words } from "./text.ts";

/** Search results show about this many characters of a description. */
export const META_DESCRIPTION_MAX = 155;
/** and about this many of a title. */
export const TITLE_MAX = 60;
export const SLUG_MAX = 80;
export const WORDS_PER_MINUTE = 200;
/** Pages with fewer words are commonly flagged as thin content. */
export const THIN_CONTENT_WORDS = 300;

/**
 * A URL slug: lower case, accents removed, apostrophes dropped, anything else that is not a letter or a digit turned
 * into single dashes, at most SLUG_MAX characters, cut at a dash. Letters of other scripts are kept (URLs carry
 * them percent-encoded). Example: `slugify("Édge Queues: Don't Wait!")` is `"edge-queues-dont-wait"`.
 */
export function slugify(title: string, max: number = SLUG_MAX): string {
  const slug = title
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .replace(/['’]/g, "")
    .replace(/[^\p{L}\p{N}]+/gu, "-")
    .replace(/^-+|-+$/g, "");
  const chars = [...slug];
  if (chars.length <= max) return slug;
  const cut = chars.slice(0, max + 1).join("");
  const dash = cut.lastIndexOf("-");
  return (dash > 0 ? cut.slice(0, dash) : chars.slice(0, max).join("")).replace(/-+$/, "");
}

/** Cuts `text` to at most `max` code points at a word boundary, ending with "…" when something was cut. */
export function truncateOnWord(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  const cut = chars.slice(0, max).join("");
  const space = cut.lastIndexOf(" ");
  // One long word with no space to cut at: cut inside it rather than return nothing.
  const kept = (space > 0 ? cut.slice(0, space) : chars.slice(0, max - 1).join("")).replace(/[\s,;:.!?\-–—]+$/u, "");
  return `${kept}…`;
}

/**
 * The first sentences of the visible text that fit in `max` characters; a longer first sentence is cut at a word.
 * HTML headings are left out (a heading has no full stop and would run into the first sentence), unless they are
 * all the text there is.
 */
export function metaDescription(body: string, max: number = META_DESCRIPTION_MAX): string {
  const withoutHeadings = collapseWhitespace(visibleText(body.replace(/<(h[1-6])\b[^>]*>[\s\S]*?<\/\1\s*>/gi, " ")));
  const all = sentences(withoutHeadings || collapseWhitespace(visibleText(body)));
  let description = "";
  for (const sentence of all) {
    const next = description ? `${description} ${sentence}` : sentence;
    if (codePointLength(next) > max) break;
    description = next;
  }
  return description || truncateOnWord(all[0] ?? "", max);
}

export interface Keyword {
  readonly term: string;
  readonly count: number;
}

/**
 * The most frequent words that are not English stop words, numbers or single letters, lower-cased, with a
 * possessive "'s" removed; ties go to the word that appears first.
 */
export function topKeywords(text: string, limit: number): Keyword[] {
  const counts = new Map<string, number>();
  for (const word of words(text)) {
    const term = word.toLowerCase().replace(/['’]s$/u, "");
    if (codePointLength(term) < 2 || /^\p{N}+$/u.test(term) || ENGLISH_STOP_WORDS.has(term.replace(/’/g, "'"))) continue;
    counts.set(term, (counts.get(term) ?? 0) + 1);
  }
  // Map keeps insertion order and sort is stable, so equal counts stay in order of first appearance.
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([term, count]) => ({ term, count }));
}

export interface SeoSummary {
  readonly slug: string;
  readonly title: string;
  readonly metaDescription: string;
  readonly words: number;
  readonly readingTimeMinutes: number;
  readonly keywords: Keyword[];
  readonly warnings: string[];
}

export function seoSummary(input: { title: string; body: string; maxKeywords: number }): SeoSummary {
  const title = collapseWhitespace(input.title);
  const slug = slugify(title);
  if (!slug) throw new InputError("invalid payload: title: has no letters or digits to build a slug from");
  const bodyText = collapseWhitespace(visibleText(input.body));
  const wordCount = words(bodyText).length;
  const description = metaDescription(input.body);
  const warnings: string[] = [];
  if (codePointLength(title) > TITLE_MAX) warnings.push(`title is longer than ${TITLE_MAX} characters: search results will cut it`);
  if (wordCount < THIN_CONTENT_WORDS) warnings.push(`body has ${wordCount} words, under ${THIN_CONTENT_WORDS}: likely seen as thin content`);
  if (!description) warnings.push("body has no visible text for a meta description");
  return {
    slug,
    title,
    metaDescription: description,
    words: wordCount,
    readingTimeMinutes: Math.ceil(wordCount / WORDS_PER_MINUTE),
    keywords: topKeywords(`${title}\n${bodyText}`, input.maxKeywords),
    warnings,
  };
}
