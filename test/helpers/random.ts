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
