-- count_queued --
-- Messages of one actor for one task waiting in the broker's queue (and its delay queue):
-- queued only, not in flight, since a dead worker's in-flight messages wait for redelivery.
SELECT count(*) FROM {table}
WHERE queue_name = ANY(%s) AND "state" = 'queued'
  AND message->>'actor_name' = %s AND message->'args'->>0 = %s;

-- delete_queued --
-- Deletes one task's queued messages of the given actors; a message being processed is
-- left alone (its state is not 'queued'), so no worker loses the message it holds.
DELETE FROM {table}
WHERE queue_name = ANY(%s) AND "state" = 'queued'
  AND message->>'actor_name' = ANY(%s) AND message->'args'->>0 = %s;
