/**
 * The server's life: parse the command line, configure the plugin, listen, serve, and shut
 * down cleanly (close, cleanup, unload, remove the socket and pid file) on a signal, at the end
 * of --run, on nbdkit_shutdown, or when the single -s client leaves.
 */
import { readFileSync, unlinkSync, writeFileSync, renameSync } from 'node:fs';
import { Backend, RequestError } from './backend.js';
import { daemonize, notifyReady } from './daemon.js';
import { dumpConfig, dumpPlugin, helpText, versionText } from './dump.js';
import { optimiseRequestPathSooner } from './js-tiering.js';
import { type Listening, stdioStreams } from './listeners.js';
import { isVerbose, logDebug, logError, logRaw, logWarning, setLogDestination, setLogFile, setVerbose } from './log.js';
import { longOptionsText, parseCommandLine, type ServerOptions, shortOptionsText, UsageError } from './options.js';
import { type Plugin, ReportedPluginError } from './plugin.js';
import { configure, instantiate, type ResolvedPlugin, resolvePlugin } from './plugin-loader.js';
import { isPluginDebugFlag } from './plugin-registry.js';
import { captiveEnvironment, runCaptive, serverUri } from './captive.js';
import { Connections, listenAsOptions, makeHost, Shutdown } from './serving.js';
import { checkSocketActivation, takeSocketActivation } from './socket-activation.js';
import { loadTlsConfig, type TlsConfig } from './tls.js';

/** How the caller runs main. */
export interface MainOptions {
  /**
   * The caller ends the process as soon as main resolves (the nbdkit-ts command does). The
   * server's SIGINT/SIGTERM/SIGHUP handlers then stay installed to the end: removing them
   * restores the signals' default action, and one arriving between that and the exit would kill
   * the process and lose its exit status. Embedders leave this off and get their signals back.
   */
  exitsAfter?: boolean;
}

/** Run nbdkit-ts with these arguments; resolves to the exit status. */
export async function main(argv: string[], mainOptions: MainOptions = {}): Promise<number> {
  let options: ServerOptions;
  let activated: number[];
  try {
    activated = takeSocketActivation();
    options = parseCommandLine(argv);
    if (activated.length > 0) checkSocketActivation(options);
  } catch (error) {
    return usageFailure(error);
  }
  setVerbose(options.verbose);
  setLogDestination(options.log ?? 'stderr');
  if (options.logFile !== undefined) {
    try {
      setLogFile(options.logFile);
    } catch (error) {
      return usageFailure(new UsageError(`--log: ${options.logFile}: ${(error as Error).message}`));
    }
  }
  // nbdkit-ts has no debug variables for -D to set: say so, as nbdkit does of a flag nothing
  // uses. Flags for nbdkit's own core (nbdkit.*) pass silently, as they do there.
  // A built-in plugin's own flags (data.AST) are used when that plugin is the one served.
  for (const flag of options.debugFlags) {
    if (!flag.startsWith('nbdkit.') && !isPluginDebugFlag(options.plugin, flag)) logWarning(`debug flag -D ${flag} was not used`);
  }
  if (options.debugEnviron) {
    // -D nbdkit.environ=1: what the plugin and --run will see, for debugging with -v.
    for (const [key, value] of Object.entries(process.env)) logDebug(`environ: ${key}=${value ?? ''}`);
  }

  // nbdkit answers these from the command line alone, before looking at any plugin.
  if (options.listOptions === 'short') return print(shortOptionsText());
  if (options.listOptions === 'long') return print(longOptionsText());
  if (options.dumpConfig) return print(await dumpConfig());
  if (options.plugin === undefined) {
    if (options.help) return print(helpText(undefined));
    if (options.version) return print(versionText());
  }

  const foreground =
    options.foreground ||
    options.single ||
    options.run !== undefined ||
    options.exitWithParent ||
    options.dumpPlugin ||
    options.help ||
    options.version ||
    activated.length > 0;
  if (!foreground) {
    // A password typed at the terminal (password=-) is read by the server itself, from the
    // caller's stdin, which it then keeps.
    const input = readsStdin(options) ? readStdin() : readsPassword(options) ? 'inherit' : undefined;
    return daemonize(argv, options.verbose, input, inheritedDescriptors(options));
  }

  const shutdown = new Shutdown();
  let plugin: Plugin;
  let resolved: ResolvedPlugin;
  let tls: TlsConfig | undefined;
  try {
    tls = loadTlsConfig(options);
    resolved = resolvePlugin(options);
    plugin = await instantiate(resolved.name, makeHost(options, shutdown));
  } catch (error) {
    return usageFailure(error);
  }

  // With a plugin, --help and --version describe it too: a plugin that cannot load fails them.
  if (options.help) return print(helpText(plugin));
  if (options.version) return print(versionText(plugin));
  try {
    await configure(plugin, resolved.params, { complete: !options.dumpPlugin });
  } catch (error) {
    return usageFailure(error);
  }
  if (options.dumpPlugin) return print(await dumpPlugin(plugin));

  const backend = new Backend(plugin, { readonly: options.readonly, threads: options.threads });
  try {
    await backend.prepare();
  } catch (error) {
    return usageFailure(error);
  }
  return serve(options, backend, shutdown, tls, mainOptions.exitsAfter ?? false, activated);
}

/** Whether the plugin reads its script from stdin (`sh -`, `script=-`). */
function readsStdin(options: ServerOptions): boolean {
  return options.params.some(({ key, value }) => value === '-' && (key === undefined || key === 'script'));
}

/** Whether a parameter is a password to type at the terminal (nbdkit_read_password's `-`). */
function readsPassword(options: ServerOptions): boolean {
  return options.params.some(({ key, value }) => value === '-' && key !== undefined && key !== 'script');
}

/**
 * Descriptors the command line hands the plugin (fd=N, dirfd=N, and KEY=-N for
 * nbdkit_read_password), which the server must keep.
 */
function inheritedDescriptors(options: ServerOptions): number[] {
  return options.params.flatMap(({ key, value }) => {
    let fd: number | undefined;
    if ((key === 'fd' || key === 'dirfd') && /^\d+$/.test(value)) fd = Number(value);
    else if (/^-\d+$/.test(value)) fd = Number(value.slice(1));
    return fd !== undefined && fd > 2 ? [fd] : [];
  });
}

function readStdin(): Buffer {
  try {
    return readFileSync(0);
  } catch {
    return Buffer.alloc(0);
  }
}

/** Information on stdout, then a successful exit. */
function print(text: string): number {
  process.stdout.write(text);
  return 0;
}

/** Report a start-up failure once (the backend has already printed its own) and give status 1. */
function usageFailure(error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  if (!(error instanceof RequestError) && !(error instanceof ReportedPluginError)) logError(message);
  if (!(error instanceof UsageError) && isVerbose()) logRaw(String((error as Error).stack));
  return 1;
}

async function serve(
  options: ServerOptions,
  backend: Backend,
  shutdown: Shutdown,
  tls: TlsConfig | undefined,
  exitsAfter: boolean,
  activated: number[],
): Promise<number> {
  optimiseRequestPathSooner();
  const connections = new Connections(backend, options, tls, shutdown);

  let listening: Listening | undefined;
  let exitStatus = 0;
  const onSignal = (): void => shutdown.request();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  try {
    if (options.single) {
      // stdout is the socket now: anything printed by mistake must go to stderr instead.
      console.log = console.error;
      console.info = console.error;
      await Promise.race([connections.accept(stdioStreams()), shutdown.done]);
    } else {
      try {
        listening = await listenAsOptions(options, tls, connections.accept, activated);
      } catch (error) {
        logError((error as Error).message);
        return 1;
      }
      if (options.pidFile) writePidFile(options.pidFile);
      try {
        await backend.afterFork();
      } catch {
        // Already reported by the backend (a plugin that cannot reach what it serves, such as
        // the nbd plugin's shared connection): a clean start-up failure.
        return 1;
      }
      const uri = serverUri(options, listening);
      // --print-uri: on stdout here, or by the waiting parent when the server went to the background.
      const background = notifyReady(options.printUri ? uri : undefined);
      if (options.printUri && !background) process.stdout.write(`${uri}\n`);
      // In the background, as nbdkit, messages go to the system log unless --log said otherwise:
      // stderr ends with the parent that relayed the start-up messages.
      if (background && options.log === undefined) setLogDestination('syslog');
      if (options.exitWithParent) watchParent(shutdown);

      if (options.run !== undefined) {
        const env = captiveEnvironment(options, listening);
        const status = runCaptive(options.run, env);
        exitStatus = await Promise.race([status, shutdown.done.then(() => 0)]);
      } else {
        await shutdown.done;
      }
    }
  } finally {
    // The signal handlers stay until the end: a second SIGTERM must not cut the clean-up short.
    logDebug('shutting down');
    const closing = listening?.close();
    await connections.drain();
    await closing;
    await backend.cleanup();
    await backend.unload();
    if (options.pidFile) removeQuietly(options.pidFile);
    if (!exitsAfter) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
    }
  }
  return exitStatus;
}

function writePidFile(path: string): void {
  // Written whole under a temporary name first, so a reader never sees a partial pid.
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${process.pid}\n`);
  renameSync(temporary, path);
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** --exit-with-parent: Node has no PR_SET_PDEATHSIG, so notice the re-parenting instead. */
function watchParent(shutdown: Shutdown): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      logDebug('parent process exited, shutting down');
      shutdown.request();
    }
  }, 250);
  timer.unref();
  void shutdown.done.then(() => clearInterval(timer));
}
