import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { machineInfo, type MachineInfo } from './machine';
import { outDir, type TopologyInfo } from './topology';

/** What every benchmark hands back to the runner; the runner prints `table` and writes the JSON. */
export interface BenchReport {
  params: Record<string, unknown>;
  results: Record<string, unknown>;
  topology?: TopologyInfo;
  /** Human-readable figures (one or more plain-text tables). */
  table: string;
  notes?: string[];
}

export interface BenchContext {
  quick: boolean;
  /** Size override (`--n`), meaning depends on the bench. */
  n?: number;
  args: Record<string, string | boolean>;
  say: (line: string) => void;
}

export interface BenchJson extends BenchReport {
  name: string;
  quick: boolean;
  machine: { atStart: MachineInfo; atEnd: MachineInfo };
  durationSec: number;
}

export function writeBenchJson(name: string, json: BenchJson): string {
  mkdirSync(outDir(), { recursive: true });
  const file = path.join(outDir(), `${name}.json`);
  writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
  return file;
}

export { machineInfo };
