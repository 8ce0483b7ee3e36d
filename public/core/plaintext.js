// Text another device sent us (a file's name and type, a message), made safe to show.
//
// Unicode format characters change how text reads without being seen: a right-to-left
// override turns "invoice_2024_\u202Efdp.exe" into "invoice_2024_exe.pdf" on screen.
// So every control and format character goes (bidi embeddings, overrides, isolates and
// marks, zero-width spaces, word joiners, soft hyphens, tag characters, the BOM, line and
// paragraph separators), except the zero-width joiner and non-joiner that emoji and
// several scripts need to be spelt right; a message keeps its line breaks.

const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
const KEPT = new Set(['\u200c', '\u200d']);

/**
 * @param {string} text
 * @param {{lines?: boolean}} [options] `lines`: keep line breaks (a message), else they go
 * @returns {string}
 */
export function shownText(text, { lines = false } = {}) {
  return text.replace(HIDDEN, (ch) => {
    if (KEPT.has(ch) || (lines && ch === '\n')) return ch;
    return ch === '\t' ? ' ' : '';
  });
}

const MIME_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;

/**
 * A media type as the sender claims it, or '' when it is not one (shown as "unknown type").
 * @param {unknown} type
 */
export function shownMediaType(type) {
  return typeof type === 'string' && MIME_TYPE.test(type) ? type.toLowerCase() : '';
}
