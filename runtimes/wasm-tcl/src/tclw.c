/*
 * The C side of @nbdkit-ts/wasm-tcl: a thin, allocation-free layer over Tcl's C API that the
 * JavaScript wrapper (index.js) calls through the WebAssembly exports.
 *
 * Conventions:
 * - Every function returning a Tcl_Obj * returns it with one reference owned by the caller
 *   (JS releases it with tclw_decr), so JS never holds an object Tcl may free under it.
 * - Byte arrays cross the boundary as pointer + length into the WebAssembly heap: the caller
 *   copies once, and no character encoding is ever applied, so every byte value round trips.
 * - Strings cross as Tcl's UTF-8 with an explicit length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <emscripten.h>
#include <tcl.h>

#define EXPORT EMSCRIPTEN_KEEPALIVE

/* Commands implemented in JavaScript: the wrapper keeps a table of handlers by id. */
EM_JS(int, tclw_js_command, (int id, Tcl_Interp *interp, int objc, Tcl_Obj *const *objv), {
  return Module.tclwCommand(id, interp, objc, objv);
});

/* Output written by the script to stdout/stderr (1 or 2), handed to JavaScript. Under nbdkit's
 * -s option the process's stdout is the NBD socket, so Tcl must never write to fd 1 itself. */
EM_JS(void, tclw_js_output, (int which, const char *buf, int len), {
  Module.tclwOutput(which, buf, len);
});

/* [pid] is the server's process id (emscripten's libc answers 42 for every process), so that
 * scripts naming temporary files after it do not collide. */
EM_JS(int, tclw_js_pid, (void), {
  return process.pid;
});

pid_t
getpid (void)
{
  return tclw_js_pid ();
}

/* ---- Standard channels routed to JavaScript ---- */

static int
StdClose (ClientData cd, Tcl_Interp *interp)
{
  return 0;
}

static int
StdInput (ClientData cd, char *buf, int toRead, int *errorCodePtr)
{
  return 0;                     /* stdin is always at end of file */
}

static int
StdOutput (ClientData cd, const char *buf, int toWrite, int *errorCodePtr)
{
  tclw_js_output ((int) (intptr_t) cd, buf, toWrite);
  return toWrite;
}

static void
StdWatch (ClientData cd, int mask)
{
}

static int
StdGetHandle (ClientData cd, int direction, ClientData *handlePtr)
{
  return TCL_ERROR;
}

static const Tcl_ChannelType stdChannelType = {
  "wasmstd", TCL_CHANNEL_VERSION_5,
  StdClose, StdInput, StdOutput,
  NULL, NULL, NULL,             /* seek, setOption, getOption */
  StdWatch, StdGetHandle,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL
};

static void
init_once (void)
{
  static int done = 0;
  Tcl_Channel in, out, err;

  if (done)
    return;
  done = 1;

  Tcl_FindExecutable (NULL);
  /* Node speaks UTF-8; so do file names and text channels here. */
  Tcl_SetSystemEncoding (NULL, "utf-8");

  /* Installed before any interpreter exists, so that every interpreter registers these
   * instead of channels on the process's file descriptors 0, 1 and 2. */
  in = Tcl_CreateChannel (&stdChannelType, "stdin", (ClientData) 0, TCL_READABLE);
  out = Tcl_CreateChannel (&stdChannelType, "stdout", (ClientData) 1, TCL_WRITABLE);
  err = Tcl_CreateChannel (&stdChannelType, "stderr", (ClientData) 2, TCL_WRITABLE);
  Tcl_SetChannelOption (NULL, out, "-buffering", "line");
  Tcl_SetChannelOption (NULL, err, "-buffering", "none");
  Tcl_SetStdChannel (in, TCL_STDIN);
  Tcl_SetStdChannel (out, TCL_STDOUT);
  Tcl_SetStdChannel (err, TCL_STDERR);
}

/* ---- Interpreters ---- */

/* Creates an interpreter. library, if not NULL, is the directory holding init.tcl.
 * Tcl_Init's result is left in *init_code; the interpreter's result holds its message. */
EXPORT Tcl_Interp *
tclw_create (const char *library, int *init_code)
{
  Tcl_Interp *interp;

  init_once ();
  interp = Tcl_CreateInterp ();
  if (library)
    Tcl_SetVar2 (interp, "tcl_library", NULL, library, TCL_GLOBAL_ONLY);
  *init_code = Tcl_Init (interp);
  return interp;
}

EXPORT void
tclw_delete (Tcl_Interp *interp)
{
  Tcl_DeleteInterp (interp);
}

EXPORT int
tclw_eval (Tcl_Interp *interp, const char *script, int len)
{
  return Tcl_EvalEx (interp, script, len, TCL_EVAL_GLOBAL);
}

EXPORT int
tclw_eval_file (Tcl_Interp *interp, const char *path)
{
  return Tcl_EvalFile (interp, path);
}

EXPORT int
tclw_error_line (Tcl_Interp *interp)
{
  return Tcl_GetErrorLine (interp);
}

/* Calls objv[0] with the other elements as arguments, at global level. The objects keep the
 * references the caller holds: this takes and drops its own around the call. */
EXPORT int
tclw_invoke (Tcl_Interp *interp, int objc, Tcl_Obj **objv)
{
  int i, r;

  for (i = 0; i < objc; i++)
    Tcl_IncrRefCount (objv[i]);
  r = Tcl_EvalObjv (interp, objc, objv, TCL_EVAL_GLOBAL);
  for (i = 0; i < objc; i++)
    Tcl_DecrRefCount (objv[i]);
  return r;
}

/* The hot path of a data callback: name handle count offset [extra...]. The count and offset
 * objects are made here, so one call crosses the boundary per request. */
EXPORT int
tclw_invoke_io (Tcl_Interp *interp, Tcl_Obj *name, Tcl_Obj *handle,
                Tcl_Obj *middle, int count, Tcl_WideInt offset,
                int nextra, Tcl_Obj **extra)
{
  Tcl_Obj *objv[8];
  int objc = 0, i, r;

  objv[objc++] = name;
  objv[objc++] = handle;
  objv[objc++] = middle ? middle : Tcl_NewIntObj (count);
  objv[objc++] = Tcl_NewWideIntObj (offset);
  for (i = 0; i < nextra && objc < 8; i++)
    objv[objc++] = extra[i];
  for (i = 0; i < objc; i++)
    Tcl_IncrRefCount (objv[i]);
  r = Tcl_EvalObjv (interp, objc, objv, TCL_EVAL_GLOBAL);
  for (i = 0; i < objc; i++)
    Tcl_DecrRefCount (objv[i]);
  return r;
}

EXPORT int
tclw_proc_exists (Tcl_Interp *interp, const char *name)
{
  Tcl_Obj *objv[3];
  int i, r, len = 0;

  objv[0] = Tcl_NewStringObj ("info", -1);
  objv[1] = Tcl_NewStringObj ("procs", -1);
  objv[2] = Tcl_NewStringObj (name, -1);
  for (i = 0; i < 3; i++)
    Tcl_IncrRefCount (objv[i]);
  r = Tcl_EvalObjv (interp, 3, objv, TCL_EVAL_GLOBAL);
  for (i = 0; i < 3; i++)
    Tcl_DecrRefCount (objv[i]);
  if (r != TCL_OK)
    return 0;
  Tcl_GetStringFromObj (Tcl_GetObjResult (interp), &len);
  return len > 0;
}

/* ---- The interpreter's result ---- */

EXPORT Tcl_Obj *
tclw_result (Tcl_Interp *interp)
{
  Tcl_Obj *obj = Tcl_GetObjResult (interp);
  Tcl_IncrRefCount (obj);
  return obj;
}

EXPORT const char *
tclw_result_string (Tcl_Interp *interp, int *len)
{
  return Tcl_GetStringFromObj (Tcl_GetObjResult (interp), len);
}

EXPORT unsigned char *
tclw_result_bytes (Tcl_Interp *interp, int *len)
{
  return Tcl_GetByteArrayFromObj (Tcl_GetObjResult (interp), len);
}

EXPORT int
tclw_result_wide (Tcl_Interp *interp, Tcl_WideInt *out)
{
  return Tcl_GetWideIntFromObj (interp, Tcl_GetObjResult (interp), out);
}

EXPORT int
tclw_result_bool (Tcl_Interp *interp, int *out)
{
  return Tcl_GetBooleanFromObj (interp, Tcl_GetObjResult (interp), out);
}

EXPORT void
tclw_set_result (Tcl_Interp *interp, Tcl_Obj *obj)
{
  Tcl_SetObjResult (interp, obj);
}

EXPORT void
tclw_reset_result (Tcl_Interp *interp)
{
  Tcl_ResetResult (interp);
}

/* Sets errorCode (a Tcl list) for an error raised by a JavaScript command. */
EXPORT void
tclw_set_error_code (Tcl_Interp *interp, Tcl_Obj *code)
{
  Tcl_SetObjErrorCode (interp, code);
}

/* ---- Objects ---- */

EXPORT Tcl_Obj *
tclw_new_string (const char *bytes, int len)
{
  Tcl_Obj *obj = Tcl_NewStringObj (bytes, len);
  Tcl_IncrRefCount (obj);
  return obj;
}

EXPORT Tcl_Obj *
tclw_new_bytes (const unsigned char *bytes, int len)
{
  Tcl_Obj *obj = Tcl_NewByteArrayObj (bytes, len);
  Tcl_IncrRefCount (obj);
  return obj;
}

/* A byte array of len bytes whose storage the caller fills in place (one copy, not two). */
EXPORT Tcl_Obj *
tclw_new_bytes_uninit (int len, unsigned char **storage)
{
  Tcl_Obj *obj = Tcl_NewByteArrayObj (NULL, 0);
  Tcl_IncrRefCount (obj);
  *storage = Tcl_SetByteArrayLength (obj, len);
  return obj;
}

EXPORT Tcl_Obj *
tclw_new_int (int value)
{
  Tcl_Obj *obj = Tcl_NewIntObj (value);
  Tcl_IncrRefCount (obj);
  return obj;
}

EXPORT Tcl_Obj *
tclw_new_wide (Tcl_WideInt value)
{
  Tcl_Obj *obj = Tcl_NewWideIntObj (value);
  Tcl_IncrRefCount (obj);
  return obj;
}

EXPORT Tcl_Obj *
tclw_new_double (double value)
{
  Tcl_Obj *obj = Tcl_NewDoubleObj (value);
  Tcl_IncrRefCount (obj);
  return obj;
}

EXPORT Tcl_Obj *
tclw_new_bool (int value)
{
  Tcl_Obj *obj = Tcl_NewBooleanObj (value);
  Tcl_IncrRefCount (obj);
  return obj;
}

/* A list of objc elements (each gains a reference held by the list). */
EXPORT Tcl_Obj *
tclw_new_list (int objc, Tcl_Obj *const *objv)
{
  Tcl_Obj *obj = Tcl_NewListObj (objc, objv);
  Tcl_IncrRefCount (obj);
  return obj;
}

EXPORT void
tclw_incr (Tcl_Obj *obj)
{
  Tcl_IncrRefCount (obj);
}

EXPORT void
tclw_decr (Tcl_Obj *obj)
{
  Tcl_DecrRefCount (obj);
}

EXPORT const char *
tclw_get_string (Tcl_Obj *obj, int *len)
{
  return Tcl_GetStringFromObj (obj, len);
}

EXPORT unsigned char *
tclw_get_bytes (Tcl_Obj *obj, int *len)
{
  return Tcl_GetByteArrayFromObj (obj, len);
}

EXPORT int
tclw_get_wide (Tcl_Interp *interp, Tcl_Obj *obj, Tcl_WideInt *out)
{
  return Tcl_GetWideIntFromObj (interp, obj, out);
}

EXPORT int
tclw_get_bool (Tcl_Interp *interp, Tcl_Obj *obj, int *out)
{
  return Tcl_GetBooleanFromObj (interp, obj, out);
}

EXPORT int
tclw_get_double (Tcl_Interp *interp, Tcl_Obj *obj, double *out)
{
  return Tcl_GetDoubleFromObj (interp, obj, out);
}

/* The elements of a list, borrowed from it: valid while the list object lives unchanged. */
EXPORT int
tclw_list_elements (Tcl_Interp *interp, Tcl_Obj *list, int *objc, Tcl_Obj ***objv)
{
  return Tcl_ListObjGetElements (interp, list, objc, objv);
}

/* ---- Variables ---- */

EXPORT Tcl_Obj *
tclw_get_var (Tcl_Interp *interp, const char *name)
{
  Tcl_Obj *obj = Tcl_GetVar2Ex (interp, name, NULL, TCL_GLOBAL_ONLY);
  if (obj)
    Tcl_IncrRefCount (obj);
  return obj;
}

EXPORT int
tclw_set_var (Tcl_Interp *interp, const char *name, Tcl_Obj *value)
{
  return Tcl_SetVar2Ex (interp, name, NULL, value, TCL_GLOBAL_ONLY | TCL_LEAVE_ERR_MSG)
    ? TCL_OK : TCL_ERROR;
}

/* ---- Commands implemented in JavaScript ---- */

static int
JsCommand (ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
  return tclw_js_command ((int) (intptr_t) cd, interp, objc, objv);
}

EXPORT void
tclw_create_command (Tcl_Interp *interp, const char *name, int id)
{
  Tcl_CreateObjCommand (interp, name, JsCommand, (ClientData) (intptr_t) id, NULL);
}

/* Flushes Tcl's stdout and stderr buffers (after a callback that printed). */
EXPORT void
tclw_flush_std (void)
{
  Tcl_Channel c;
  if ((c = Tcl_GetStdChannel (TCL_STDOUT)) != NULL)
    Tcl_Flush (c);
  if ((c = Tcl_GetStdChannel (TCL_STDERR)) != NULL)
    Tcl_Flush (c);
}

EXPORT const char *
tclw_patch_level (void)
{
  return TCL_PATCH_LEVEL;
}

EXPORT const char *
tclw_version (void)
{
  return TCL_VERSION;
}
