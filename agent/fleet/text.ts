// Text measurements shared by the content handlers. Word and sentence boundaries come from Intl.Segmenter (ICU,
// built into Node), which handles apostrophes, numbers and scripts written without spaces better than a regex.

const NAMED_ENTITIES: Readonly<Record<string, string>> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
};

/** Decodes the entities HTML escaping produces (named ones above, and numeric ones); leaves others as they are. */
export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,8});/gi, (entity: string, body: string) => {
    if (body.startsWith("#")) {
      const hex = body[1] === "x" || body[1] === "X";
      const code = Number.parseInt(body.slice(hex ? 2 : 1), hex ? 16 : 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : entity;
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? entity;
  });
}

/** The text a reader sees in an HTML (or plain text) fragment: no tags, comments, scripts or styles; entities decoded. */
export function visibleText(html: string): string {
  const withoutMarkup = html
    .replace(/<!--[\s\S]*?(?:-->|$)/g, " ")
    .replace(/<(script|style)\b[^>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi, " ")
    .replace(/<\/?[a-z][^>]*>/gi, " ");
  return decodeEntities(withoutMarkup);
}

/** Collapses runs of whitespace to one space and trims. */
export function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

const wordSegmenter = new Intl.Segmenter("en", { granularity: "word" });
const sentenceSegmenter = new Intl.Segmenter("en", { granularity: "sentence" });

/** The words of a text, in order (letters or digits; punctuation and spaces are not words). */
export function words(text: string): string[] {
  const out: string[] = [];
  for (const part of wordSegmenter.segment(text)) if (part.isWordLike) out.push(part.segment);
  return out;
}

export function countWords(text: string): number {
  let count = 0;
  for (const part of wordSegmenter.segment(text)) if (part.isWordLike) count++;
  return count;
}

/** The sentences of a text, trimmed, empty ones dropped. */
export function sentences(text: string): string[] {
  const out: string[] = [];
  for (const part of sentenceSegmenter.segment(text)) {
    const sentence = part.segment.trim();
    if (sentence) out.push(sentence);
  }
  return out;
}

/** Length in Unicode code points (what a person counts as characters; an emoji is one, not two). */
export function codePointLength(text: string): number {
  let length = 0;
  for (const _ of text) length++;
  return length;
}
