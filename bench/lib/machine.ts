import { execFileSync } from 'node:child_process';
import os from 'node:os';

/** What the figures were measured on: cores, memory, load at the time. */
export interface MachineInfo {
  nproc: number | null;
  cpus: number;
  cpuModel: string;
  memTotalGiB: number;
  loadavg: number[];
  uptime: string | null;
  node: string;
  platform: string;
  at: string;
}

function run(cmd: string, args: string[] = []): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5000 }).trim();
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  const nproc = run('nproc');
  return {
    nproc: nproc ? Number(nproc) : null,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memTotalGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
    uptime: run('uptime'),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    at: new Date().toISOString(),
  };
}
