/**
 * File names are bytes: on Linux a name (or a link's target) need not be UTF-8 (a Latin-1
 * `caf\xe9.txt` from an old disk or a Windows share). Inside folder-sync every name is a string,
 * each byte that is not part of valid UTF-8 held as one lone surrogate, U+DC80–U+DCFF (Python's
 * "surrogateescape"): no valid UTF-8 decodes to one, so the mapping is exact both ways, and a path
 * goes back to its bytes (`fsPath`) at the file system. The manifest (JSON) keeps such names as they
 * are; the log shows each such byte as `\xe9` (`show` in errors.ts).
 */

/** A lone low surrogate U+DC80–U+DCFF (an escaped byte), not the second half of a pair. */
const ESCAPED = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** Whether `name` holds a byte that is not UTF-8 (see above). */
export function hasEscapes(name: string): boolean {
  return ESCAPED.test(name);
}

/** A name (or path, or link target) from its bytes: UTF-8 where valid, each other byte escaped. */
export function decodeName(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  // Perf: almost every name is valid UTF-8, and decodes without U+FFFD.
  if (!text.includes('\uFFFD')) return text;
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const n = sequenceLength(bytes, i);
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + bytes[i]);
      i++;
    } else {
      out += bytes.toString('utf8', i, i + n);
      i += n;
    }
  }
  return out;
}

/** The length of the valid UTF-8 sequence at `i` (no overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
function sequenceLength(b: Buffer, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  let n: number;
  let min: number;
  let cp: number;
  if ((c & 0xe0) === 0xc0) [n, min, cp] = [2, 0x80, c & 0x1f];
  else if ((c & 0xf0) === 0xe0) [n, min, cp] = [3, 0x800, c & 0x0f];
  else if ((c & 0xf8) === 0xf0) [n, min, cp] = [4, 0x10000, c & 0x07];
  else return 0;
  if (i + n > b.length) return 0;
  for (let k = 1; k < n; k++) {
    if ((b[i + k] & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (b[i + k] & 0x3f);
  }
  return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : n;
}

/** The bytes of a name or path with escaped bytes (see above). */
export function nameBytes(name: string): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i);
    const escaped = unit >= 0xdc80 && unit <= 0xdcff && !(i > 0 && name.charCodeAt(i - 1) >= 0xd800 && name.charCodeAt(i - 1) <= 0xdbff);
    if (!escaped) continue;
    if (i > from) parts.push(Buffer.from(name.slice(from, i), 'utf8'));
    parts.push(Buffer.of(unit - 0xdc00));
    from = i + 1;
  }
  if (from < name.length) parts.push(Buffer.from(name.slice(from), 'utf8'));
  return Buffer.concat(parts);
}

/** What Node's fs takes for `path`: the string itself, or, when it holds escaped bytes, its bytes. */
export function fsPath(path: string): string | Buffer {
  return hasEscapes(path) ? nameBytes(path) : path;
}

/**
 * A name or folder path as a listing's text carries it (UTF-8, NUL-separated, between threads):
 * itself, or, when it holds bytes that are not UTF-8, `/` and the hex of its bytes (no name, and no
 * relative path, begins with `/`). `fromTransport` reads it back.
 */
export function toTransport(name: string): string {
  return hasEscapes(name) ? '/' + nameBytes(name).toString('hex') : name;
}

export function fromTransport(text: string): string {
  return text.charCodeAt(0) === 47 ? decodeName(Buffer.from(text.slice(1), 'hex')) : text;
}
