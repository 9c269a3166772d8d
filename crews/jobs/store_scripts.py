"""The job store's Lua scripts: each one atomic step on one job's keys (one cluster slot).

``crews.jobs.store.RedisJobStore`` registers them; the keys that are not a
job's (indexes, owners) are written by separate commands beside them.
"""

# Record who registered a crew; 0 when another principal did first (and the caller is no admin).
CLAIM_CREW = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] and ARGV[3] ~= '1' then return 0 end
if not owner then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""

# Move a job to a terminal status only if it is not terminal yet.
# KEYS: the state hash; ARGV: status, reason, output, finished at. Returns {1 if it moved, the owner or ''}.
FINISH = """
local status = redis.call('HGET', KEYS[1], 'status')
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
if not status or status == 'completed' or status == 'failed' or status == 'canceled' then return {0, owner} end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2], 'output', ARGV[3], 'finished_at', ARGV[4])
return {1, owner}
"""

# Create a job's state hash and index it, only if it does not exist yet.
# Scripts touch one job's keys only (one cluster slot); the global indexes are updated beside them.
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'crew', ARGV[2], 'status', 'submitted', 'inputs', ARGV[3],
           'created_at', ARGV[4], 'timeout_s', ARGV[5], 'owner', ARGV[6])
return 1
"""

# A step's state from an event, unless a later event (higher stream sequence) already set it.
# Without a sequence (the coordinator's own 'dispatched', 'failed'): 'dispatched' only over 'pending'.
STEP_STATE = """
if ARGV[3] == '' then
  if ARGV[2] == 'dispatched' and redis.call('HGET', KEYS[1], 'step:' .. ARGV[1]) ~= 'pending' then return 0 end
  redis.call('HSET', KEYS[1], 'step:' .. ARGV[1], ARGV[2])
  return 1
end
local last = tonumber(redis.call('HGET', KEYS[1], 'seq:' .. ARGV[1]) or '0')
if tonumber(ARGV[3]) <= last then return 0 end
redis.call('HSET', KEYS[1], 'step:' .. ARGV[1], ARGV[2], 'seq:' .. ARGV[1], ARGV[3])
return 1
"""

# Store a job's plan and mark it running, unless it has a plan already or has ended; then read it back.
# KEYS: the state hash; ARGV: plan, plan version, crew spec, traceparent, step ids. {} when there is no job.
START = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, {}} end
local status = redis.call('HGET', KEYS[1], 'status')
local started = 0
if redis.call('HEXISTS', KEYS[1], 'plan') == 0 and status ~= 'completed' and status ~= 'failed'
   and status ~= 'canceled' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'plan', ARGV[1], 'plan_version', ARGV[2], 'crew_spec', ARGV[3],
             'traceparent', ARGV[4])
  for i = 5, #ARGV do redis.call('HSET', KEYS[1], 'step:' .. ARGV[i], 'pending') end
  started = 1
end
return {started, redis.call('HGETALL', KEYS[1])}
"""

# A delivery attempt of a step, kept if it is the highest seen (events of one job arrive concurrently).
ATTEMPT = """
local last = tonumber(redis.call('HGET', KEYS[1], 'attempts:' .. ARGV[1]) or '0')
if tonumber(ARGV[2]) <= last then return 0 end
redis.call('HSET', KEYS[1], 'attempts:' .. ARGV[1], ARGV[2])
return 1
"""

# A new plan version, only over the version it was made from (compare and set); new steps pending.
REPLACE_PLAN = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' or redis.call('HGET', KEYS[1], 'plan_version') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'plan', ARGV[2], 'plan_version', ARGV[3])
for i = 4, #ARGV do redis.call('HSETNX', KEYS[1], 'step:' .. ARGV[i], 'pending') end
return 1
"""
