// Package sim is a seeded, single-goroutine simulation of the metadata quorum: 3 or 5
// metadatalog.Replicas driven by a fake clock, a fake network and fake disks, with clients proposing
// record batches and a checker that watches every step for a broken Raft promise.
//
// # Why a simulation
//
// The real Log runs Raft on goroutines, timers, TCP and fsync, so a bad interleaving shows up once in a
// thousand runs and never again. Here everything that could vary is drawn from one seed, so a failure
// is a replay command away. metadatalog.Replica was built for this: it has no clock (we call Tick) and
// no network (we deliver its Messages), and it makes each Ready durable through an injected Disk, which
// here is a fake that can lose exactly what a real disk may lose.
//
// # What is faked, and how
//
//   - Clock. Time is a step counter. Every replica ticks once every tickEvery steps, each with its own
//     phase, so elections do not start in lockstep. In each step a running node gets one group (tick,
//     the messages that arrived, client proposals) and one Process, as the Log batches them; one
//     group in five processes after every message instead, so Readies come in other shapes too.
//   - Network. One queue of marshalled messages, each with its own delivery step. A seeded RNG drops
//     messages, delays them (a random delay also reorders them), duplicates a few, and partitions the
//     voters into two random groups for a while before healing. Messages travel as bytes so that no
//     two replicas ever share a protobuf object, as on a real wire.
//   - Disk. fakeDisk keeps what is synced apart from what is only written. Save with mustSync syncs
//     every write so far; without it the write stays unsynced. A crash keeps a random prefix of the
//     unsynced records (possibly none): a torn tail. Records are laid out as etcd's WAL writes them,
//     entries first and the hard state last, and an entry replaces every entry from its index on, just
//     as a WAL replay does when Raft has truncated a conflicting tail. A crash may also strike in the
//     middle of a synced Save, before anything it was meant to make durable is sent.
//   - Early sends. The Log lets a leader replicate while it fsyncs (ReplicaConfig.SendEarly, Raft
//     thesis §10.2.1). Three incarnations in four do the same, so a leader's entries can be on its
//     followers and lost from its own torn tail; the rest send only what is durable.
//   - Staggered start. Nearly a third of the nodes start late, as processes do, so that a node's first
//     write often carries its first epoch together with entries from a quorum that moved on.
//   - Crash and restart. A crashed node loses its replica, its image and its clients' pending writes.
//     On restart its raft.MemoryStorage is rebuilt from the disk's surviving state, a new Replica
//     starts from it, and the image starts empty: Replica starts Raft with Applied=0, so Raft hands
//     back every committed entry from offset 1 and the image is rebuilt by replaying them from
//     scratch, exactly what a restarted controller does.
//   - Raft's own randomness. Raft draws its randomized election timeouts from crypto/rand. The tests
//     replace that source per seed with testing/cryptotest.SetGlobalRandom, which is why seeds run one
//     after another instead of in parallel: a shared source would make a seed's draws depend on the
//     others.
//   - Clients. At random steps a client proposes one to three batches on a node: usually the leader
//     once it is active (below), sometimes a leader that is not yet active or a node that does not
//     lead. Each batch is a metadatapb.RecordBatch whose records carry a unique config
//     value, so every batch is distinguishable. onProposed gives the (offset, epoch) of each; the write
//     is acknowledged when that node applies a committed entry at that offset in that same epoch, which
//     is Raft's commit rule for a leader's own term.
//   - Controllers. Each node runs a simulated controller around the product's own membership code
//     (controller.MembershipCore: registration, heartbeats, session expiry, the same calls the event
//     loop makes). It becomes active as controller/state.go does, when its Replica leads and it has
//     applied the first entry of its own epoch (and, since the simulated clients also write on a leader
//     that is not active, every entry it proposed in that epoch). Then it gives every registered broker
//     a fresh session, decides each broker request against its speculative image with its predicted
//     next offset, proposes the records as one RecordBatch, and answers when that offset commits in its
//     epoch; the clients' batches on an active leader count as its writes too. On losing leadership it
//     drops every parked answer and forgets every session. The clock the sessions read is the step
//     counter, 10ms a step.
//   - Brokers. Three to five per seed, with ids from 1 up, so some share an id with a voter as in
//     combined mode. Each runs the broker's own pure code: broker.NextState for its lifecycle,
//     broker.RegistrationRequest and broker.FetchRequest for what it sends, broker.ApplyFetch to follow
//     the log, broker.MetadataResponse for what clients would see. It registers with a new random
//     incarnation, searches round robin for the active controller with backoff, heartbeats every 300ms
//     with its applied offset (at once when a fenced broker has applied its own registration), and
//     follows the log from a random running node, which serves only what it has applied (so never past
//     its commit) and, below metadata.version 2, only if it is the active controller
//     (controller.FetchGate). Its requests and answers cross a lossy, delaying network of their own.
//     Brokers crash and restart with a new incarnation, start controlled shutdowns, and are cut off from
//     every controller or from the leader alone for long enough that their 1.5s sessions expire.
//   - Topics. Now and then the active controller decides a client's CreateTopics with the product's own
//     decision (controller.CreateTopics: validation and placement against its speculative image), so
//     partitions are placed on brokers that come and go, and every fence, unfence and controlled
//     shutdown moves real leaderships through the product's replication manager. A newly active
//     controller first finishes the moves an earlier one left undone (controller.ResumeLeadership).
//     Brokers that lead partitions grow their ISRs back with the product's AlterPartition request
//     (broker.ISRExpansion, decided by controller.AlterPartition) when replicas return, and now and
//     then the active controller runs a preferred-leader election over every partition
//     (controller.ElectLeaders).
//
// A run has a fault phase of a fixed number of steps, then heals every partition, restarts every node,
// stops losing messages and runs until the quorum converges: one leader that every node follows, and
// every node's log and applied offset equal to the leader's, and then until every broker is registered
// and unfenced. Everything is bounded, so a run that does
// not converge fails instead of hanging.
//
// # Invariants
//
// Checked after every Process, at checkpoints and at the end:
//
//  1. At most one leader per epoch: whenever a node reports a leader for an epoch (itself when it leads,
//     or the leader it follows), no node has ever reported another one for that epoch. A node's epoch
//     also never goes backwards, not even across a crash, since a lost term or vote is how two leaders
//     arise.
//  2. Committed prefixes agree: every entry any node ever applied at offset i, in any incarnation, has
//     the same epoch and data. Each node applies offsets in order, without gaps or repeats.
//  3. No acknowledged append is lost: after convergence every acknowledged (offset, epoch, data) is in
//     every node's committed log. An acknowledgement with other data than proposed also fails.
//  4. Every node's image, maintained batch by batch, equals a fresh replay of its committed log.
//  5. Liveness once healed: a leader exists, and a new proposal commits on every node.
//  6. An active leader knows its offsets in advance. A leader is active once it has applied the first
//     entry of its own epoch (DESIGN.md's active controller); from then on each batch it proposes
//     lands right after the previous one. The controller's ProposeAt builds its speculative image on
//     that prediction, so a miss would make it resign for nothing, or worse. The simulated controller's
//     own writes are held to the same rule, and it must find its log ending at the entry it activates on.
//  7. Broker epochs only grow: in the committed log, each RegisterBrokerRecord of a new incarnation
//     carries an epoch equal to the offset of its batch and above every earlier epoch of that broker id
//     (the same incarnation re-registering must keep its epoch).
//  8. An expired session is fenced exactly once: in the committed log, no BrokerRegistrationChange
//     {fenced TRUE} reaches a broker epoch that is already fenced, whether by an earlier fence with no
//     unfence in between or by registering fenced and never being unfenced.
//  9. A fenced broker is never in Metadata: at random steps each broker answers Metadata (a random
//     version) from its current image, and every broker listed, the controller id and every partition
//     leader shown are registered and unfenced in that image. Each broker's image also equals the
//     committed history's at its offset, at every checkpoint (invariant 4's rule for brokers).
//  10. Brokers are live once healed: after the quorum converges, every broker (all restarted) is
//     running and registered, at its current incarnation and epoch and unfenced, in the committed image
//     of the leader, whose controller is active.
//
// Invariant 0 stands for everything else that must not happen: a Raft panic, a Process error other than
// an injected crash, or a proposal Raft accepted without reporting its offset.
//
// A failure names the seed and the command that replays it. TestBrokenDiskIsCaught runs the same
// harness over a disk that ignores mustSync, and asserts that the checker notices: a checker that never
// fails proves nothing. TestBrokenBrokersAreCaught does the same for invariants 7–10, with a Sabotage
// each: registrations one epoch off, every expiry fence written twice, Metadata listing fenced brokers,
// heartbeats that never report progress, and fences that leave the fenced broker leading.
package sim
