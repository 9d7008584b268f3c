-- A file-backed disk in Lua for nbdkit-ts (and nbdkit).
--
--   nbdkit-ts lua examples/lua/file.lua file=disk.img
--
-- Each connection opens the file with io.open; reads and writes seek and transfer just the
-- requested range, so a disk of any size is served without loading it into memory.

local filename

function config (key, value)
   if key == "file" then
      filename = value
   else
      error ("unknown parameter " .. key .. "=" .. value)
   end
end

function config_complete ()
   if not filename then
      error ("file parameter missing: nbdkit-ts lua file.lua file=disk.img")
   end
end

function open (readonly)
   local fh, msg = io.open (filename, readonly and "rb" or "r+b")
   if not fh then error (msg) end
   return fh
end

function close (fh)
   fh:close ()
end

function get_size (fh)
   return assert (fh:seek ("end"))
end

function pread (fh, count, offset)
   assert (fh:seek ("set", offset))
   local data = fh:read (count)
   if data == nil or #data < count then
      error ("short read at offset " .. offset)
   end
   return data
end

function pwrite (fh, buf, offset)
   assert (fh:seek ("set", offset))
   assert (fh:write (buf))
end

function flush (fh)
   assert (fh:flush ())
end
