import type { BenchContext, BenchReport } from './lib/report';
export async function runB3(_ctx: BenchContext): Promise<BenchReport> {
  throw new Error('not yet');
}
