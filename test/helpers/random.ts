/**
 * A deterministic source of numbers below n, so that a failing randomised test replays the
 * same way (a 31-bit linear congruential generator).
 */
export function seededRandom(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
}

/**
 * The same for tests that draw many small numbers: seededRandom's low bits repeat with short
 * periods (below(4) cycles every 4 draws), this one's do not (xorshift32, scaled from the top).
 */
export function seededUniform(seed: number): (n: number) => number {
  let state = seed >>> 0 || 1;
  return (n) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return Math.floor((state / 2 ** 32) * n);
  };
}
