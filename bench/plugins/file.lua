-- A file-backed disk for the benchmark: open, seek, read and write on the file named by file=.
-- Runs unmodified under native nbdkit (nbdkit lua) and nbdkit-ts.
--
--   nbdkit lua bench/plugins/file.lua file=disk.img

local filename = nil

function config (key, value)
   if key == "file" then
      filename = value
   else
      error ("unknown parameter " .. key)
   end
end

function config_complete ()
   if not filename then
      error ("file=FILENAME is required")
   end
end

function open (readonly)
   local fh, err
   if readonly then
      fh, err = io.open (filename, "rb")
   else
      fh, err = io.open (filename, "r+b")
   end
   if not fh then
      error (err)
   end
   return fh
end

function close (fh)
   fh:close ()
end

function get_size (fh)
   return fh:seek ("end")
end

function pread (fh, count, offset)
   fh:seek ("set", offset)
   local data = fh:read (count)
   if data == nil or #data ~= count then
      error ("short read")
   end
   return data
end

function pwrite (fh, buf, offset)
   fh:seek ("set", offset)
   assert (fh:write (buf))
end

function flush (fh)
   fh:flush ()
end
