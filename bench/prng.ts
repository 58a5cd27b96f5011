/**
 * A small seeded pseudo-random generator for the benchmark: the same seed gives the same sequence
 * on every machine and every Node version, so the generated trees hold the same bytes every time.
 *
 * sfc32 (Chris Doty-Humphrey's "small fast counting" generator): 128 bits of state, 32-bit
 * integer arithmetic only, statistically good enough for test data and far faster than
 * `crypto.randomBytes` with a fixed key would be to set up.
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Seeds from a string (a tree name, a scenario name) hashed with FNV-1a into four words. */
  constructor(seed: string) {
    const words: number[] = [];
    for (let k = 0; k < 4; k++) {
      let h = (0x811c9dc5 ^ k) >>> 0;
      for (let i = 0; i < seed.length; i++) {
        h ^= seed.charCodeAt(i);
        h = Math.imul(h, 0x01000193) >>> 0;
      }
      words.push(h);
    }
    [this.a, this.b, this.c, this.d] = words as [number, number, number, number];
    // Discard the first outputs: sfc32 mixes poorly for a few rounds after seeding.
    for (let i = 0; i < 16; i++) this.nextU32();
  }

  /** The next 32-bit unsigned integer. */
  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** A float in [min, max) whose logarithm is uniform (for ratios such as branching factors). */
  logUniform(min: number, max: number): number {
    return Math.exp(Math.log(min) + this.next() * (Math.log(max) - Math.log(min)));
  }

  /** Fills a buffer with random bytes, four at a time (the tail byte by byte). */
  fill(buffer: Buffer): Buffer {
    const whole = buffer.length & ~3;
    for (let i = 0; i < whole; i += 4) buffer.writeUInt32LE(this.nextU32(), i);
    for (let i = whole; i < buffer.length; i++) buffer[i] = this.nextU32() & 0xff;
    return buffer;
  }

  /** A lowercase word of `min`–`max` letters (for file and folder names). */
  word(min: number, max: number): string {
    const length = this.int(min, max);
    let out = '';
    for (let i = 0; i < length; i++) out += String.fromCharCode(97 + this.int(0, 25));
    return out;
  }

  /** `count` distinct integers from [0, n), in random order (partial Fisher–Yates). */
  sample(n: number, count: number): number[] {
    if (count > n) throw new Error(`cannot sample ${count} of ${n}`);
    const index = new Uint32Array(n);
    for (let i = 0; i < n; i++) index[i] = i;
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const j = this.int(i, n - 1);
      const picked = index[j];
      index[j] = index[i];
      index[i] = picked;
      out.push(picked);
    }
    return out;
  }
}
