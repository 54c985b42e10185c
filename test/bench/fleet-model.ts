// The Monte Carlo model behind the retry strategy (docs/fleet.md): N boxes make
// one AWS call each within the first second, against a token bucket of rate R
// and burst B, as AWS throttles; a throttled box waits as its strategy says and
// calls again. For each strategy it reports, over many simulated fleets, the
// drain time (first call to last success) against the minimum (N − B) / R, and
// attempts per box. The `spread` delays are the agent's own retryDelayMs.
//
//   node test/bench/fleet-model.ts [N] [R] [B] [fleets]
import { retryDelayMs } from "../../agent/credentials/retry-strategy.ts";
import { median, table } from "./stats.ts";

type Strategy = (retry: number, random: number) => number;

/** The SDK's standard mode for throttling: full jitter from 500 ms, capped at 20 s (@smithy/util-retry). */
const sdkStandard: Strategy = (retry, random) => random * Math.min(20_000, 500 * 2 ** retry);

const STRATEGIES: Record<string, Strategy> = {
  spread: (retry, random) => retryDelayMs("THROTTLING", retry, random),
  "sdk standard": sdkStandard,
};

interface FleetOutcome {
  drainMs: number;
  attemptsPerBox: number;
}

/** One fleet: a discrete-event simulation in milliseconds. */
function simulate(n: number, rate: number, burst: number, strategy: Strategy, random: () => number): FleetOutcome {
  // Calls due, as [time, box, retry]; kept sorted by time.
  let due: [number, number, number][] = Array.from({ length: n }, (_, box) => [random() * 1000, box, 0]);
  let tokens = burst;
  let last = 0;
  let attempts = 0;
  let done = 0;
  let lastSuccess = 0;
  while (done < n) {
    due.sort((a, b) => a[0] - b[0]);
    const [t, box, retry] = due.shift()!;
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * rate);
    last = t;
    attempts += 1;
    if (tokens >= 1) {
      tokens -= 1;
      done += 1;
      lastSuccess = t;
      continue;
    }
    due = [...due, [t + strategy(retry + 1, random()), box, retry + 1]];
  }
  return { drainMs: lastSuccess, attemptsPerBox: attempts / n };
}

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const [n = 40, rate = 2, burst = 5, fleets = 200] = process.argv.slice(2).map(Number);
const minimumMs = (Math.max(0, n - burst) / rate) * 1000;
const rows = [["strategy", "drain p50 ÷ min", "attempts per box p50", "attempts per box max"]];
for (const [name, strategy] of Object.entries(STRATEGIES)) {
  const random = mulberry32(42);
  const runs = Array.from({ length: fleets }, () => simulate(n, rate, burst, strategy, random));
  rows.push([
    name,
    (median(runs.map((r) => r.drainMs)) / minimumMs).toFixed(2),
    median(runs.map((r) => r.attemptsPerBox)).toFixed(2),
    Math.max(...runs.map((r) => r.attemptsPerBox)).toFixed(2),
  ]);
}
console.log(`N = ${n} boxes, R = ${rate} TPS, burst ${burst}; ${fleets} fleets each; minimum drain ${(minimumMs / 1000).toFixed(1)} s\n`);
console.log(table(rows));
