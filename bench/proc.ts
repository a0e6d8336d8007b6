/**
 * CPU and memory of a process from /proc (Linux). CPU is utime + stime from /proc/<pid>/stat,
 * which covers every thread of the process, live or exited (proc(5)); RSS is VmRSS from
 * /proc/<pid>/status. Read at the edges of a measurement window; never per packet.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* Linux default */
}

export interface ProcSample {
  pid: number;
  /** user + system CPU since the process started, µs. */
  cpuUs: number;
  /** Resident set, kB. */
  rssKb: number;
  /** Threads right now. */
  threads: number;
  /**
   * Major page faults since the process started (pages read back from disk: code or data the
   * kernel reclaimed, e.g. a proactive-reclaim daemon such as DAMON's pageout). Each stalls the
   * faulting thread for a disk read.
   */
  majorFaults: number;
  atMs: number;
}

export function sampleProc(pid: number, atMs: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); majflt is field 12, utime and stime are fields 14 and 15.
    const majorFaults = Number(rest[9]);
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    const threads = Number(rest[17]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return { pid, cpuUs: ((utime + stime) * 1e6) / clkTck, rssKb: m ? Number(m[1]) : 0, threads, majorFaults, atMs };
  } catch {
    return undefined;
  }
}

/** CPU used between two samples of the same process, µs. */
export function cpuBetween(a: ProcSample | undefined, b: ProcSample | undefined): number {
  if (!a || !b) return 0;
  return b.cpuUs - a.cpuUs;
}

/**
 * Busy CPU of the whole machine since boot, µs summed over all CPUs (/proc/stat, first line); of
 * that the part spent in interrupts and softirqs (the kernel's network stack, mostly ours) and the
 * part stolen by the hypervisor (time this VM's CPU wanted to run and did not: a stalled core,
 * which no process here can be blamed for); and each CPU's stolen and busy time, by CPU number.
 */
export function sampleMachine(): { busyUs: number; irqUs: number; stealUs: number; stealUsByCpu: number[]; busyUsByCpu: number[] } {
  try {
    const lines = readFileSync('/proc/stat', 'utf8').split('\n');
    // user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
    const fields = (line: string) => line.trim().split(/\s+/).slice(1).map(Number);
    const f = fields(lines[0]!);
    const us = (ticks: number) => (ticks * 1e6) / clkTck;
    const busy = (g: number[]) => (g[0] ?? 0) + (g[1] ?? 0) + (g[2] ?? 0) + (g[5] ?? 0) + (g[6] ?? 0) + (g[7] ?? 0);
    const stealUsByCpu: number[] = [];
    const busyUsByCpu: number[] = [];
    for (const line of lines) {
      const m = /^cpu(\d+) /.exec(line);
      if (!m) continue;
      const g = fields(line);
      stealUsByCpu[Number(m[1])] = us(g[7] ?? 0);
      busyUsByCpu[Number(m[1])] = us(busy(g));
    }
    return { busyUs: us(busy(f)), irqUs: us((f[5] ?? 0) + (f[6] ?? 0)), stealUs: us(f[7] ?? 0), stealUsByCpu, busyUsByCpu };
  } catch {
    return { busyUs: 0, irqUs: 0, stealUs: 0, stealUsByCpu: [], busyUsByCpu: [] };
  }
}
