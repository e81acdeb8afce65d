// The benchmarks' command-line options: `--name VALUE` anywhere in process.argv.

/** The value after `--name` as a number (NaN when no value follows), or the fallback without the option. */
export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** The value after `--name`, or the fallback without the option or without a value after it. */
export function stringArg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** The value after `--name`, or undefined without the option or without a value after it. */
export function optionalArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
