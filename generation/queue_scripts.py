"""The queue's Lua scripts (generation/queue.py): each check-and-act is one step on Redis,
so a worker that lost its lease cannot act on the entry in between (REFERENCE.md §3)."""

# Each script first checks that ARGV[2] (the consumer) still owns entry ARGV[3].
OWNS = """
local function owns(stream, group, consumer, id)
  local pending = redis.call('XPENDING', stream, group, id, id, 1)
  return #pending > 0 and pending[1][2] == consumer
end
"""

# Reset the idle time of owned entries without bumping their delivery count (JUSTID).
RENEW = OWNS + """
local renewed = {}
for i = 3, #ARGV do
  if owns(KEYS[1], ARGV[1], ARGV[2], ARGV[i]) then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    table.insert(renewed, ARGV[i])
  end
end
return renewed
"""

# Add a job and remember its entry, in one step (the reconciler looks jobs up there), once
# per job id: a job already finished (its done marker) or still in a stream gets no second
# entry, so a retried XADD (a timeout whose first try did land) or a reconciler that looked
# while the job finished runs nothing twice. Returns {entry id or '', 1 if added else 0}.
# KEYS: stream, entries, done; ARGV: job, request
ENQUEUE = """
-- The marker holds a hash of the request, so a job id reused (a database made anew
-- under an old Redis) is a new job, not a done one.
if redis.call('GET', KEYS[3]) == redis.sha1hex(ARGV[2]) then return {'', 0} end
local where = redis.call('HGET', KEYS[2], ARGV[1])
if where then
  local stream, id = string.match(where, '^(.*)|([^|]*)$')
  if stream and #redis.call('XRANGE', stream, id, id) > 0 then return {id, 0} end
end
local id = redis.call('XADD', KEYS[1], '*', 'job', ARGV[1], 'request', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], KEYS[1] .. '|' .. id)
return {id, 1}
"""

# Report the outcome, mark the job done, acknowledge and delete the entry: all or nothing,
# owner only. The done marker (a hash of the request) tells the reconciler and later enqueues
# that the job is finished even while PostgreSQL has not heard of it yet.
# KEYS: stream, results, entries, done[, dead]; ARGV: group, consumer, entry, outcome, job,
# done ttl[, dead]
FINISH = OWNS + """
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
if KEYS[5] then redis.call('XADD', KEYS[5], '*', unpack(cjson.decode(ARGV[7]))) end
local entry = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])[1]
for i = 1, #entry[2], 2 do
  if entry[2][i] == 'request' then
    redis.call('SET', KEYS[4], redis.sha1hex(entry[2][i + 1]), 'EX', ARGV[6])
  end
end
redis.call('XADD', KEYS[2], '*', unpack(cjson.decode(ARGV[4])))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if redis.call('HGET', KEYS[3], ARGV[5]) == KEYS[1] .. '|' .. ARGV[3] then
  redis.call('HDEL', KEYS[3], ARGV[5])  -- unless a re-enqueue replaced it meanwhile
end
return 1
"""

# Hand owned entries back: mark them idle for a whole lease so any worker reclaims them now.
RELEASE = OWNS + """
local released = 0
for i = 4, #ARGV do
  if owns(KEYS[1], ARGV[1], ARGV[2], ARGV[i]) then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
    released = released + 1
  end
end
return released
"""

# Drop an owned entry without running it (its job is done already): acknowledge, delete.
DISCARD = OWNS + """
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
"""
