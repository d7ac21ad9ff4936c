// One credit budget over the sockets of an agent that holds one per shard (transport-ws.ts). A credit cannot be taken
// back once given (`ready` only adds), and one given to a shard without work stays there, out of reach of the
// shards that have work, until that shard gets a task or its socket closes. So the agent offers its free slots where
// work shows up, and keeps the rest until some shard shows it:
//
//   room = free slots - credits outstanding on every open socket (the sum never exceeds the free slots, whatever
//   the order of pushes, finishes and drops); then, while room is left:
//   1. reach: each open socket to an active shard that holds no credit gets one, in turns (a cursor moves past the
//      last one served): every shard can push to the agent, and with fewer slots than sockets each gets its turn;
//   2. back to the sender: each socket gets back the slots of the finished tasks it delivered (its shard had work,
//      and likely has more); a draining shard gets credits only this way;
//   3. grow: a socket gets up to twice the tasks pushed on it since the last round, so a shard with a backlog
//      doubles what it may push every round trip;
//   4. alone: the only socket to an active shard (an older mesh, or a pool of one shard) gets all that is left,
//      as a single socket always did.
// What is left stays with the agent: the next push on any socket claims it (steps 1 and 3). A shard whose work
// stops keeps the credits it holds, at most what it had in use, until it gets work again or its socket closes.

export interface CreditSocket {
  /** Credits given on the socket and not yet used by a pushed task. */
  outstanding: number;
  /** Slots of finished tasks this socket delivered since the last round. */
  owed: number;
  /** Tasks pushed on the socket since the last round. */
  pushed: number;
  /** An active shard takes new work; a draining one only hands over what it has. */
  active: boolean;
}

export interface CreditRound {
  /** Free slots not given as credits on any open socket. */
  room: number;
  /** The open sockets, in a stable order (the order turns are taken in). */
  sockets: readonly CreditSocket[];
  /** Sockets to active shards that are not open now (reconnecting): they may want credits soon. */
  absent: number;
  cursor: number;
}

export interface CreditPlan {
  /** Credits to give on each socket, in the order given. */
  grants: number[];
  /** Where the next round of reach credits starts. */
  cursor: number;
}

export function planCredits({ room, sockets, absent, cursor }: CreditRound): CreditPlan {
  const n = sockets.length;
  const grants = sockets.map(() => 0);
  if (n === 0 || room <= 0) return { grants, cursor };
  const start = ((cursor % n) + n) % n;
  const order = Array.from({ length: n }, (_, k) => (start + k) % n);
  let left = room;
  let next = cursor;
  const give = (i: number, upTo: number): void => {
    const k = Math.min(left, Math.max(0, upTo - grants[i]!));
    grants[i]! += k;
    left -= k;
  };
  for (const i of order) {
    if (sockets[i]!.active && sockets[i]!.outstanding === 0 && left > 0) {
      give(i, 1);
      next = i + 1;
    }
  }
  // A reach credit given to a sender already gives one of its slots back.
  for (const i of order) give(i, sockets[i]!.owed);
  for (const i of order) if (sockets[i]!.active) give(i, 2 * sockets[i]!.pushed);
  const active = order.filter((i) => sockets[i]!.active);
  if (active.length === 1 && absent === 0) give(active[0]!, grants[active[0]!]! + left);
  return { grants, cursor: next };
}
