/**
 * The command line of nbdkit(1): `nbdkit-ts [OPTIONS] PLUGIN [key=value ...]`.
 *
 * Options may come before or after the plugin, as with nbdkit's getopt. A mistake throws a
 * UsageError whose message becomes the one-line `nbdkit-ts: error: ...`.
 */
import type { LogDestination } from './log.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type TlsMode = 'off' | 'on' | 'require';

export interface ServerOptions {
  plugin: string | undefined;
  /** key=value parameters in command-line order; a bare value has key undefined (the magic key). */
  params: Array<{ key: string | undefined; value: string }>;
  unixSocket: string | undefined;
  port: string | undefined;
  ipAddress: string | undefined;
  single: boolean;
  foreground: boolean;
  pidFile: string | undefined;
  run: string | undefined;
  exportName: string;
  readonly: boolean;
  threads: number;
  verbose: boolean;
  exitWithParent: boolean;
  dumpPlugin: boolean;
  dumpConfig: boolean;
  help: boolean;
  version: boolean;
  noStructuredReplies: boolean;
  noMetaContexts: boolean;
  tls: TlsMode;
  tlsCertificates: string | undefined;
  tlsPsk: string | undefined;
  tlsVerifyPeer: boolean;
  /** --log: where messages go; undefined for the default (stderr, syslog once in the background). */
  log: LogDestination | undefined;
  /** --mask-handshake: the global handshake flags offered are masked with this. */
  handshakeMask: number;
  /** -D NAME.FLAG=N, in command-line order (nbdkit-ts has no debug variables to set). */
  debugFlags: string[];
}

export function defaultOptions(): ServerOptions {
  return {
    plugin: undefined,
    params: [],
    unixSocket: undefined,
    port: undefined,
    ipAddress: undefined,
    single: false,
    foreground: false,
    pidFile: undefined,
    run: undefined,
    exportName: '',
    readonly: false,
    threads: 16,
    verbose: false,
    exitWithParent: false,
    dumpPlugin: false,
    dumpConfig: false,
    help: false,
    version: false,
    noStructuredReplies: false,
    noMetaContexts: false,
    tls: 'off',
    tlsCertificates: undefined,
    tlsPsk: undefined,
    tlsVerifyPeer: false,
    log: undefined,
    handshakeMask: 0xffff,
    debugFlags: [],
  };
}

type Setter = (options: ServerOptions, value: string) => void;

interface OptionSpec {
  long: string;
  short?: string;
  /** Present when the option takes a value. */
  set?: Setter;
  /** Present when the option is a switch. */
  flag?: (options: ServerOptions) => void;
}

function parseThreads(value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`cannot parse number of threads: ${value}`);
  return Number(value);
}

/** An unsigned number as nbdkit_parse_unsigned reads it: decimal, 0x hexadecimal or 0 octal. */
function parseUnsigned(what: string, value: string): number {
  const text = value.trim();
  let n = NaN;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) n = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) n = parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) n = Number(text);
  if (!Number.isSafeInteger(n) || n > 0xffffffff) throw new UsageError(`${what}: could not parse number: "${value}"`);
  return n;
}

/** -D NAME.FLAG=N, checked as nbdkit checks it. */
function parseDebugFlag(value: string): string {
  const match = /^([^.=]+)\.([^=]+)=(-?\d+|0[xX][0-9a-fA-F]+)$/.exec(value);
  if (!match) throw new UsageError('-D (Debug Flag) must have the format NAME.FLAG=N');
  return `${match[1]}.${match[2]}`;
}

function parseLog(options: ServerOptions, value: string): void {
  if (value !== 'stderr' && value !== 'syslog' && value !== 'null') {
    throw new UsageError('--log must be "stderr", "syslog" or "null"');
  }
  options.log = value;
}

function parseTls(value: string): TlsMode {
  switch (value) {
    case 'off':
    case 'no':
    case 'false':
    case '0':
      return 'off';
    case 'on':
    case 'yes':
    case 'true':
    case '1':
      return 'on';
    case 'require':
    case 'required':
    case 'force':
      return 'require';
    default:
      throw new UsageError(`--tls flag must be off|on|require`);
  }
}

const SPECS: OptionSpec[] = [
  { long: 'unix', short: 'U', set: (o, v) => (o.unixSocket = v) },
  { long: 'port', short: 'p', set: (o, v) => (o.port = v) },
  { long: 'ipaddr', short: 'i', set: (o, v) => (o.ipAddress = v) },
  { long: 'single', short: 's', flag: (o) => (o.single = true) },
  { long: 'foreground', short: 'f', flag: (o) => (o.foreground = true) },
  { long: 'no-fork', flag: (o) => (o.foreground = true) },
  { long: 'pidfile', short: 'P', set: (o, v) => (o.pidFile = v) },
  { long: 'run', set: (o, v) => (o.run = v) },
  { long: 'export-name', short: 'e', set: (o, v) => (o.exportName = v) },
  { long: 'exportname', set: (o, v) => (o.exportName = v) },
  { long: 'export', set: (o, v) => (o.exportName = v) },
  { long: 'read-only', short: 'r', flag: (o) => (o.readonly = true) },
  { long: 'readonly', flag: (o) => (o.readonly = true) },
  { long: 'threads', short: 't', set: (o, v) => (o.threads = parseThreads(v)) },
  { long: 'verbose', short: 'v', flag: (o) => (o.verbose = true) },
  { long: 'exit-with-parent', flag: (o) => (o.exitWithParent = true) },
  { long: 'dump-plugin', flag: (o) => (o.dumpPlugin = true) },
  { long: 'dump-config', flag: (o) => (o.dumpConfig = true) },
  { long: 'help', flag: (o) => (o.help = true) },
  { long: 'version', short: 'V', flag: (o) => (o.version = true) },
  { long: 'no-sr', flag: (o) => (o.noStructuredReplies = true) },
  { long: 'no-structured-replies', flag: (o) => (o.noStructuredReplies = true) },
  { long: 'no-mc', flag: (o) => (o.noMetaContexts = true) },
  { long: 'no-meta-contexts', flag: (o) => (o.noMetaContexts = true) },
  { long: 'log', set: parseLog },
  { long: 'debug', short: 'D', set: (o, v) => o.debugFlags.push(parseDebugFlag(v)) },
  { long: 'mask-handshake', set: (o, v) => (o.handshakeMask = parseUnsigned('mask-handshake', v)) },
  // Newstyle is the only protocol served: -n says what is so anyway.
  { long: 'newstyle', short: 'n', flag: () => undefined },
  {
    long: 'oldstyle',
    short: 'o',
    flag: () => {
      throw new UsageError('the oldstyle protocol (-o) is not supported');
    },
  },
  { long: 'tls', set: (o, v) => (o.tls = parseTls(v)) },
  { long: 'tls-certificates', set: (o, v) => (o.tlsCertificates = v) },
  { long: 'tls-psk', set: (o, v) => (o.tlsPsk = v) },
  { long: 'tls-verify-peer', flag: (o) => (o.tlsVerifyPeer = true) },
];

const BY_LONG = new Map(SPECS.map((s) => [s.long, s]));
const BY_SHORT = new Map(SPECS.filter((s) => s.short).map((s) => [s.short!, s]));

/** Parse argv (without node and the script). */
export function parseCommandLine(argv: string[]): ServerOptions {
  const options = defaultOptions();
  let onlyPositionals = false;
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const takeValue = (name: string): string => {
      if (i + 1 >= argv.length) throw new UsageError(`option '${name}' requires an argument`);
      return argv[++i];
    };
    if (onlyPositionals || arg === '-' || !arg.startsWith('-')) {
      positionals.push(arg);
    } else if (arg === '--') {
      onlyPositionals = true;
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const spec = BY_LONG.get(name);
      if (!spec) throw new UsageError(`unrecognized option '--${name}'`);
      if (spec.flag) {
        if (eq !== -1) throw new UsageError(`option '--${name}' doesn't allow an argument`);
        spec.flag(options);
      } else {
        spec.set!(options, eq === -1 ? takeValue(`--${name}`) : arg.slice(eq + 1));
      }
    } else {
      // Short options, possibly bundled (-fv) or with an attached value (-p10809).
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j];
        const spec = BY_SHORT.get(letter);
        if (!spec) throw new UsageError(`invalid option -- '${letter}'`);
        if (spec.flag) {
          spec.flag(options);
          continue;
        }
        const rest = arg.slice(j + 1);
        spec.set!(options, rest !== '' ? rest : takeValue(`-${letter}`));
        break;
      }
    }
  }
  if (positionals.length > 0) {
    options.plugin = positionals[0];
    for (const param of positionals.slice(1)) {
      const eq = param.indexOf('=');
      if (eq === 0) throw new UsageError(`malformed parameter '${param}': empty key`);
      if (eq === -1) options.params.push({ key: undefined, value: param });
      else options.params.push({ key: param.slice(0, eq), value: param.slice(eq + 1) });
    }
  }
  checkCombinations(options);
  return options;
}

function checkCombinations(o: ServerOptions): void {
  if (o.single && (o.unixSocket !== undefined || o.port !== undefined || o.ipAddress !== undefined)) {
    throw new UsageError('-s cannot be combined with -U, -p or -i');
  }
  // As nbdkit: -i is ignored beside -U.
  if (o.unixSocket !== undefined && o.port !== undefined) throw new UsageError('-U cannot be combined with -p');
  if (o.single && o.run !== undefined) throw new UsageError('-s cannot be combined with --run');
  if (o.port !== undefined && !/^\d+$/.test(o.port)) throw new UsageError(`invalid port number: ${o.port}`);
}

/** A parameter key must look like an identifier, as nbdkit's is_config_key requires. */
export function isValidConfigKey(key: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_.-]*$/.test(key);
}

export const USAGE = `nbdkit-ts [-e|--exportname EXPORTNAME] [--exit-with-parent] [-f|--foreground] [-i|--ipaddr IPADDR]
          [-D|--debug NAME.FLAG=N] [--log=stderr|syslog|null] [--mask-handshake MASK]
          [-n|--newstyle] [--no-sr] [--no-mc] [-P|--pidfile PIDFILE]
          [-p|--port PORT] [-r|--readonly] [--run CMD] [-s|--single]
          [-t|--threads THREADS] [--tls=off|on|require]
          [--tls-certificates /path/to/certificates] [--tls-psk /path/to/pskfile]
          [--tls-verify-peer] [-U|--unix SOCKET|-] [-v|--verbose] [-V|--version]
          PLUGIN [[KEY=]VALUE [KEY=VALUE [...]]]

nbdkit-ts --dump-config
nbdkit-ts PLUGIN --dump-plugin
nbdkit-ts --help
nbdkit-ts --version

Please read the nbdkit(1) manual page for full usage.`;
