import type { BenchContext, BenchReport } from './lib/report';
export async function runB4(_ctx: BenchContext): Promise<BenchReport> {
  throw new Error('not yet');
}
