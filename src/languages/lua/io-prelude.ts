/**
 * The Lua half of the host `io` library: functions that are compositions of the TypeScript
 * primitives in host-io.ts (file:lines, io.lines/read/write/input/output/close, loadfile,
 * dofile and require's Lua-file searcher, which must find modules on the host filesystem).
 * It runs once, before the plugin script, with (io, FILE methods) as its arguments.
 */
export const IO_PRELUDE = String.raw`
local io, methods = ...
local type, error, select, setmetatable, load, tostring = type, error, select, setmetatable, load, tostring
local pack, unpack, concat = table.pack, table.unpack, table.concat
local open, iotype = io.open, io.type
local read, write, close = methods.read, methods.write, methods.close

local function readline_iterator (file, toclose, fmts)
  return function ()
    if iotype (file) ~= "file" then error ("file is already closed", 2) end
    local results = pack (read (file, unpack (fmts, 1, fmts.n)))
    if results[1] ~= nil then return unpack (results, 1, results.n) end
    if results.n > 1 and results[2] ~= nil then error (results[2], 2) end
    if toclose then close (file) end
    return nil
  end
end

function methods.lines (file, ...)
  if iotype (file) ~= "file" then error ("bad argument #1 to 'lines' (FILE* expected)", 2) end
  if select ("#", ...) > 250 then error ("too many arguments", 2) end
  return readline_iterator (file, false, pack (...))
end

local default_input, default_output = io.stdin, io.stdout

local function choose (current, file, mode, fname)
  if file == nil then return current end
  if type (file) == "string" then
    local f, msg = open (file, mode)
    if not f then error (msg, 3) end
    return f
  end
  if iotype (file) ~= "file" then
    error ("bad argument #1 to '" .. fname .. "' (FILE* expected, got " .. type (file) .. ")", 3)
  end
  return file
end

function io.input (file)
  default_input = choose (default_input, file, "r", "input")
  return default_input
end

function io.output (file)
  default_output = choose (default_output, file, "w", "output")
  return default_output
end

function io.read (...)
  if iotype (default_input) ~= "file" then error ("default input file is closed", 2) end
  return read (default_input, ...)
end

function io.write (...)
  if iotype (default_output) ~= "file" then error ("default output file is closed", 2) end
  return write (default_output, ...)
end

function io.close (file)
  return close (file == nil and default_output or file)
end

function io.lines (filename, ...)
  if select ("#", ...) > 250 then error ("too many arguments", 2) end
  if filename == nil then
    if iotype (default_input) ~= "file" then error ("default input file is closed", 2) end
    return readline_iterator (default_input, false, pack (...))
  end
  local f, msg = open (filename, "r")
  if not f then error (msg, 2) end
  return readline_iterator (f, true, pack (...)), nil, nil, f
end

function io.popen ()
  error ("'popen' not supported", 2)
end

-- Scripts loaded at run time come from the host filesystem too.
local function readsource (filename)
  local f, msg = open (filename, "rb")
  if not f then return nil, "cannot open " .. msg end
  local text = read (f, "a")
  close (f)
  -- As luaL_loadfile: a UTF-8 BOM and a first line starting with '#' are skipped, the line
  -- break is kept so that line numbers stay right.
  text = text:gsub ("^\239\187\191", "", 1)
  if text:sub (1, 1) == "#" then text = text:gsub ("^[^\n]*", "", 1) end
  return text
end

function loadfile (filename, mode, ...)
  if filename == nil then return nil, "loadfile from standard input is not supported" end
  local text, msg = readsource (filename)
  if not text then return nil, msg end
  if select ("#", ...) > 0 then
    return load (text, "@" .. filename, mode, (...))
  end
  return load (text, "@" .. filename, mode)
end

function dofile (filename)
  local f, msg = loadfile (filename)
  if not f then error (msg, 0) end
  return f ()
end

if type (package) == "table" then
  local dirsep = package.config:sub (1, 1)

  function package.searchpath (name, path, sep, rep)
    sep = sep or "."
    rep = rep or dirsep
    if sep ~= "" then
      name = name:gsub (sep:gsub ("%p", "%%%0"), (rep:gsub ("%%", "%%%%")))
    end
    local tried = {}
    for template in path:gmatch ("[^;]+") do
      local filename = template:gsub ("%?", (name:gsub ("%%", "%%%%")))
      local f = open (filename, "r")
      if f then
        close (f)
        return filename
      end
      tried[#tried + 1] = "\n\tno file '" .. filename .. "'"
    end
    return nil, concat (tried)
  end

  local searchpath = package.searchpath
  package.searchers[2] = function (name)
    local filename, msg = searchpath (name, package.path)
    if not filename then return msg end
    local chunk, err = loadfile (filename)
    if not chunk then
      error ("error loading module '" .. name .. "' from file '" .. filename .. "':\n\t" .. err, 0)
    end
    return chunk, filename
  end
  package.loaded.io = io
end

_G.io = io
`;
