import { readFileSync } from 'node:fs';

/** Memory of one process from /proc/<pid>/status (Linux): resident now and its peak (high-water mark), in bytes. */
export interface ProcMemory {
  pid: number;
  rssBytes: number | null;
  hwmBytes: number | null;
}

export function procMemory(pid: number | undefined): ProcMemory {
  if (!pid) return { pid: 0, rssBytes: null, hwmBytes: null };
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : null;
    };
    return { pid, rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') };
  } catch {
    return { pid, rssBytes: null, hwmBytes: null };
  }
}

/** Samples the RSS of named processes every `intervalMs`, for a timeline and the peak. */
export class RssSampler {
  readonly samples: { t: number; [name: string]: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();

  constructor(private readonly pids: () => Record<string, number | undefined>) {}

  start(intervalMs = 1000): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
    return this;
  }

  sample(): void {
    const row: { t: number; [name: string]: number } = { t: (Date.now() - this.started) / 1000 };
    for (const [name, pid] of Object.entries(this.pids())) {
      const m = procMemory(pid);
      if (m.rssBytes !== null) row[name] = m.rssBytes;
    }
    this.samples.push(row);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample();
  }
}
