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
  /** -4 / -6: listen on addresses of this IP family only. */
  ipFamily: 4 | 6 | undefined;
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
  /** --short-options / --long-options. */
  listOptions: 'short' | 'long' | undefined;
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
    ipFamily: undefined,
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
    listOptions: undefined,
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

/**
 * One command-line option. This table is the only list of options: the parser, `--help`,
 * `--short-options` and `--long-options` are all made from it, so an option added here is
 * documented and listed at once.
 */
export interface OptionSpec {
  long: string;
  /** Other long spellings of the same option (nbdkit's aliases, such as --read-only). */
  aliases?: readonly string[];
  short?: string;
  /** What --help shows as the option's argument (PORT); options taking a value only. */
  arg?: string;
  /** One line for --help. */
  help?: string;
  /** Present when the option takes a value. */
  set?: Setter;
  /** Present when the option is a switch. */
  flag?: (options: ServerOptions) => void;
  /**
   * An option of nbdkit that nbdkit-ts refuses: using it is a one-line error. Such options are
   * listed by --help as not supported and left out of --short-options and --long-options.
   */
  unsupported?: boolean;
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

/** An option nbdkit has and nbdkit-ts refuses, with the reason given on use. */
function refused(spec: Omit<OptionSpec, 'set' | 'flag' | 'unsupported'>, why: string, takesValue: boolean): OptionSpec {
  const fail = (): never => {
    throw new UsageError(`${spec.short ? `-${spec.short}/` : ''}--${spec.long} is not supported: ${why}`);
  };
  return takesValue ? { ...spec, set: fail, unsupported: true } : { ...spec, flag: fail, unsupported: true };
}

export const SPECS: readonly OptionSpec[] = [
  { long: 'ipv4-only', short: '4', help: 'listen on IPv4 addresses only', flag: (o) => (o.ipFamily = 4) },
  { long: 'ipv6-only', short: '6', help: 'listen on IPv6 addresses only', flag: (o) => (o.ipFamily = 6) },
  {
    long: 'debug',
    short: 'D',
    arg: 'NAME.FLAG=N',
    help: 'set a debug flag (accepted; nbdkit-ts has no debug flags)',
    set: (o, v) => o.debugFlags.push(parseDebugFlag(v)),
  },
  { long: 'dump-config', help: 'print how nbdkit-ts was built (key=value) and exit', flag: (o) => (o.dumpConfig = true) },
  {
    long: 'dump-plugin',
    help: 'print information about PLUGIN (key=value) and exit',
    flag: (o) => (o.dumpPlugin = true),
  },
  {
    long: 'exit-with-parent',
    help: 'exit when the parent process exits (implies -f)',
    flag: (o) => (o.exitWithParent = true),
  },
  {
    long: 'exportname',
    aliases: ['export', 'export-name'],
    short: 'e',
    arg: 'EXPORTNAME',
    help: 'the export name put in $uri and $exportname for --run',
    set: (o, v) => (o.exportName = v),
  },
  refused({ long: 'filter', arg: 'FILTER', help: 'add a filter' }, 'nbdkit-ts has no filters', true),
  {
    long: 'foreground',
    aliases: ['no-fork'],
    short: 'f',
    help: 'stay in the foreground',
    flag: (o) => (o.foreground = true),
  },
  refused({ long: 'group', short: 'g', arg: 'GROUP', help: 'change group after starting' }, 'run nbdkit-ts as that group instead', true),
  { long: 'help', help: 'print this help, or with PLUGIN also its parameters, and exit', flag: (o) => (o.help = true) },
  {
    long: 'ipaddr',
    aliases: ['ip-addr'],
    short: 'i',
    arg: 'IPADDR',
    help: 'listen on this address only (ignored beside -U)',
    set: (o, v) => (o.ipAddress = v),
  },
  {
    long: 'log',
    arg: 'stderr|syslog|null',
    help: 'where messages go: stderr, the system log (the default once in the background), or nowhere',
    set: parseLog,
  },
  {
    long: 'long-options',
    help: 'list the long options, one a line, and exit',
    flag: (o) => (o.listOptions = 'long'),
  },
  {
    long: 'mask-handshake',
    arg: 'MASK',
    help: 'offer only these global handshake flags (1 fixed newstyle, 2 no zeroes)',
    set: (o, v) => (o.handshakeMask = parseUnsigned('mask-handshake', v)),
  },
  // Newstyle is the only protocol served: -n says what is so anyway.
  { long: 'newstyle', aliases: ['new-style'], short: 'n', help: 'serve the newstyle protocol (the default)', flag: () => undefined },
  {
    long: 'no-mc',
    aliases: ['no-meta-contexts'],
    help: 'refuse meta contexts (block status)',
    flag: (o) => (o.noMetaContexts = true),
  },
  {
    long: 'no-sr',
    aliases: ['no-structured-replies'],
    help: 'refuse structured replies',
    flag: (o) => (o.noStructuredReplies = true),
  },
  refused(
    { long: 'oldstyle', aliases: ['old-style'], short: 'o', help: 'serve the oldstyle protocol' },
    'nbdkit-ts serves the newstyle protocol only',
    false,
  ),
  {
    long: 'pidfile',
    aliases: ['pid-file'],
    short: 'P',
    arg: 'PIDFILE',
    help: 'write the server pid here once it is listening',
    set: (o, v) => (o.pidFile = v),
  },
  { long: 'port', short: 'p', arg: 'PORT', help: 'listen on this TCP port (default 10809)', set: (o, v) => (o.port = v) },
  {
    long: 'readonly',
    aliases: ['read-only'],
    short: 'r',
    help: 'serve a read-only export',
    flag: (o) => (o.readonly = true),
  },
  {
    long: 'run',
    arg: 'CMD',
    help: 'run CMD with $uri set, then exit with its status (captive nbdkit)',
    set: (o, v) => (o.run = v),
  },
  refused(
    { long: 'selinux-label', arg: 'LABEL', help: 'SELinux label of the listening socket' },
    'nbdkit-ts has no SELinux support',
    true,
  ),
  {
    long: 'short-options',
    help: 'list the short options, one a line, and exit',
    flag: (o) => (o.listOptions = 'short'),
  },
  {
    long: 'single',
    aliases: ['stdin'],
    short: 's',
    help: 'serve one client on stdin and stdout, then exit',
    flag: (o) => (o.single = true),
  },
  refused({ long: 'swap', help: 'swap the client and server roles' }, 'nbdkit-ts is a server only', false),
  {
    long: 'threads',
    short: 't',
    arg: 'THREADS',
    help: 'at most this many requests of a connection in a parallel plugin (default 16)',
    set: (o, v) => (o.threads = parseThreads(v)),
  },
  { long: 'tls', arg: 'off|on|require', help: 'TLS through NBD_OPT_STARTTLS', set: (o, v) => (o.tls = parseTls(v)) },
  {
    long: 'tls-certificates',
    arg: 'DIR',
    help: 'X.509 certificates: DIR/server-cert.pem, server-key.pem, ca-cert.pem',
    set: (o, v) => (o.tlsCertificates = v),
  },
  { long: 'tls-psk', arg: 'PSKFILE', help: 'pre-shared keys (username:hexkey lines)', set: (o, v) => (o.tlsPsk = v) },
  {
    long: 'tls-verify-peer',
    help: 'require and check client certificates',
    flag: (o) => (o.tlsVerifyPeer = true),
  },
  {
    long: 'unix',
    short: 'U',
    arg: 'SOCKET|-',
    help: 'listen on a Unix socket (- for a private one)',
    set: (o, v) => (o.unixSocket = v),
  },
  refused({ long: 'user', short: 'u', arg: 'USER', help: 'change user after starting' }, 'run nbdkit-ts as that user instead', true),
  { long: 'verbose', short: 'v', help: 'debug messages on stderr', flag: (o) => (o.verbose = true) },
  { long: 'version', short: 'V', help: 'print the version (with PLUGIN, its version too) and exit', flag: (o) => (o.version = true) },
  refused({ long: 'vsock', help: 'listen on AF_VSOCK' }, 'nbdkit-ts has no AF_VSOCK listener', false),
];

const BY_LONG = new Map(SPECS.flatMap((s) => [s.long, ...(s.aliases ?? [])].map((name) => [name, s] as const)));
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
        // As nbdkit, these print and exit at once: what follows is never looked at.
        if (options.dumpConfig || options.listOptions) return options;
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
      // As nbdkit: text before '=' that is no valid key (a URI's "nbd+unix://?socket") makes
      // the whole parameter a bare value for the magic key.
      if (eq === -1 || !isValidConfigKey(param.slice(0, eq))) options.params.push({ key: undefined, value: param });
      else options.params.push({ key: param.slice(0, eq), value: param.slice(eq + 1) });
    }
  }
  // As nbdkit: --help and --version without a plugin answer before any combination is checked.
  if (!(options.plugin === undefined && (options.help || options.version))) checkCombinations(options);
  return options;
}

function checkCombinations(o: ServerOptions): void {
  if (o.single && (o.unixSocket !== undefined || o.port !== undefined || o.ipAddress !== undefined)) {
    throw new UsageError('-s cannot be combined with -U, -p or -i');
  }
  // As nbdkit: -i is ignored beside -U.
  if (o.unixSocket !== undefined && o.port !== undefined) throw new UsageError('-U cannot be combined with -p');
  if (o.single && o.run !== undefined) throw new UsageError('-s cannot be combined with --run');
  // Under -s stdout is the client's connection: nothing may be printed there.
  if (o.single && o.dumpPlugin) throw new UsageError('--dump-plugin cannot be combined with -s');
  if (o.port !== undefined && !/^\d+$/.test(o.port)) throw new UsageError(`invalid port number: ${o.port}`);
}

/** A parameter key must look like an identifier, as nbdkit's is_config_key requires. */
export function isValidConfigKey(key: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_.-]*$/.test(key);
}

/** --short-options: one `-X` a line, for the options nbdkit-ts takes. */
export function shortOptionsText(): string {
  const letters = SPECS.filter((s) => s.short && !s.unsupported).map((s) => s.short!);
  // As nbdkit's list: by letter, a lower-case letter before its capital.
  letters.sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()) || (a < b ? 1 : -1));
  return letters.map((letter) => `-${letter}\n`).join('');
}

/** --long-options: one `--name` a line, aliases included, for the options nbdkit-ts takes. */
export function longOptionsText(): string {
  const names = SPECS.filter((s) => !s.unsupported && s.long !== 'short-options' && s.long !== 'long-options').flatMap(
    (s) => [s.long, ...(s.aliases ?? [])],
  );
  return names.map((name) => `--${name}\n`).join('');
}

/** The left column of --help for one option: `-p, --port=PORT`. */
function optionColumn(spec: OptionSpec): string {
  const takesValue = spec.set !== undefined;
  const long = `--${spec.long}${takesValue ? `=${spec.arg ?? 'VALUE'}` : ''}`;
  return spec.short ? `-${spec.short}, ${long}` : `    ${long}`;
}

/** --help: how to call nbdkit-ts, then every option of the table with what it does. */
export function usageText(): string {
  const supported = SPECS.filter((s) => !s.unsupported);
  const width = Math.max(...supported.map((s) => optionColumn(s).length)) + 2;
  const lines = [
    'nbdkit-ts [OPTIONS] PLUGIN [[KEY=]VALUE [KEY=VALUE [...]]]',
    'nbdkit-ts PLUGIN --dump-plugin',
    'nbdkit-ts PLUGIN --help',
    'nbdkit-ts --dump-config',
    'nbdkit-ts --help',
    'nbdkit-ts [-V|--version]',
    '',
    'Options:',
  ];
  for (const spec of supported) {
    const aliases = spec.aliases?.length ? ` (also ${spec.aliases.map((a) => `--${a}`).join(', ')})` : '';
    lines.push(`  ${optionColumn(spec).padEnd(width)}${spec.help ?? ''}${aliases}`.trimEnd());
  }
  const refusedNames = SPECS.filter((s) => s.unsupported).map((s) => (s.short ? `-${s.short}|--${s.long}` : `--${s.long}`));
  lines.push('', `Options of nbdkit that nbdkit-ts refuses: ${refusedNames.join(' ')}.`);
  lines.push('', 'PLUGIN is a built-in plugin name or the path of a script.');
  lines.push('Please read the nbdkit(1) manual page for full usage.');
  return lines.join('\n') + '\n';
}
