-- A RAM disk in Lua for nbdkit-ts (and nbdkit).
--
--   nbdkit-ts lua examples/lua/ramdisk.lua size=64M
--
-- The disk is kept as a table of fixed-size blocks (Lua strings), created on first write, so
-- that a write costs one block rebuild rather than a copy of the whole disk. Blocks never
-- written read back as zeroes.

local block_size = 65536
local size = 64 * 1024 * 1024
local blocks = {}
local zero_block = string.rep ("\0", block_size)

function config (key, value)
   if key == "size" then
      -- nbdkit-ts only; native nbdkit has no nbdkit table, so give plain byte counts there.
      size = nbdkit and nbdkit.parse_size (value) or math.tointeger (tonumber (value))
   else
      error ("unknown parameter " .. key .. "=" .. value)
   end
end

function open (readonly)
   return {}
end

function get_size (h)
   return size
end

function can_multi_conn (h)
   -- Every connection sees the same blocks table.
   return true
end

function pread (h, count, offset)
   local parts = {}
   while count > 0 do
      local index = offset // block_size
      local skip = offset % block_size
      local n = math.min (count, block_size - skip)
      local block = blocks[index] or zero_block
      parts[#parts + 1] = block:sub (skip + 1, skip + n)
      count = count - n
      offset = offset + n
   end
   return table.concat (parts)
end

function pwrite (h, buf, offset)
   local done = 0
   local count = #buf
   while done < count do
      local index = offset // block_size
      local skip = offset % block_size
      local n = math.min (count - done, block_size - skip)
      local block = blocks[index] or zero_block
      blocks[index] = block:sub (1, skip) .. buf:sub (done + 1, done + n) .. block:sub (skip + n + 1)
      done = done + n
      offset = offset + n
   end
end

function trim (h, count, offset)
   -- Whole blocks inside the range are dropped; partial blocks are zeroed.
   local zeroes = string.rep ("\0", math.min (count, block_size))
   while count > 0 do
      local skip = offset % block_size
      local n = math.min (count, block_size - skip)
      if skip == 0 and n == block_size then
         blocks[offset // block_size] = nil
      else
         pwrite (h, zeroes:sub (1, n), offset)
      end
      count = count - n
      offset = offset + n
   end
end

function zero (h, count, offset, may_trim)
   trim (h, count, offset)
end
