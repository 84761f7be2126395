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
//     middle of a synced Save, before anything it was meant to make durable is sent. The records sit in
//     segments, as etcd's WAL cuts them: a Save fills the tail segment now and then (at one of three
//     paces per node), which syncs it and starts a segment named after the last entry written.
//     SaveSnapshot writes a snapshot marker and syncs, as the WAL does (a crash can cut that fsync
//     too); Release deletes every segment whose successor starts at or before its index, exactly as
//     WALDisk.Release does, so what it drops is whole segments with whatever markers they held. Opening
//     a disk is OpenWALAt over wal.Open and ReadAll: the markers a restart may use are the durable
//     ones at or below the durable commit index (wal.ValidSnapshotEntries), the replay reads from the
//     last segment that starts at or before the marker, must find the marker, and fails on an entry
//     that would leave a gap; the hard state is raised to the snapshot as OpenWALAt raises it.
//   - Early sends. The Log lets a leader replicate while it fsyncs (ReplicaConfig.SendEarly, Raft
//     thesis §10.2.1). Three incarnations in four do the same, so a leader's entries can be on its
//     followers and lost from its own torn tail; the rest send only what is durable.
//   - Staggered start. Nearly a third of the nodes start late, as processes do, so that a node's first
//     write often carries its first epoch together with entries from a quorum that moved on.
//   - Crash and restart. A crashed node loses its replica, its image, its clients' pending writes and
//     its background work (a snapshot being written leaves only a .part file, which the next start
//     removes, so no snapshot; a compaction not yet taken by the log is lost; so is a download). On
//     restart it opens as OpenLog does: the newest file in its snapshot store that the WAL holds a
//     valid marker for (openLatestSnapshot), else the beginning of the log, which the WAL must then
//     still hold. Its raft.MemoryStorage is rebuilt from the disk (ApplySnapshot at the snapshot, the
//     hard state, then only the entries after it), a new Replica starts from it, and the image starts
//     as the snapshot's (empty without one): Replica starts Raft with Applied=0, which Raft reads as
//     the snapshot's offset, so Raft hands back every committed entry after it and the image is
//     rebuilt by replaying them, exactly what a restarted controller does.
//   - Snapshots. Each node snapshots its committed image every 5–40 applied entries (drawn per node
//     and seed; the product's Snapshotter counts bytes and time instead), in the background: the file
//     appears in the node's snapshot store 1–25 steps later, holding the image's Records(), unless the
//     node crashes first. Then the log is asked to compact, which it does 0–3 steps later (Written →
//     Log.Compact → Replica.Compact) with a catch-up tail of 0–10 entries, so followers often fall
//     behind the leader's log start; only then does retention (ApplyRetention) remove the oldest files
//     beyond 1–3 kept, never the newest nor one at or after the snapshot just written, and only then
//     may the node start its next snapshot. Installing the leader's snapshot restarts the count
//     (the Snapshotter's Loaded). Loading a file builds the image from its records as
//     ReadSnapshotImage does, into one delta over an empty image. A crash picks a node that is writing
//     a snapshot, or whose log has yet to record one, one time in four.
//   - Catch-up by snapshot. Raft's MsgSnap reaches a follower's Replica only once the follower holds
//     the file, as the Log's snapshotReady decides: until then the offer is dropped, and the first one
//     starts a download from the sender's store that takes 1–40 steps and fails one time in seven (or
//     when the sender is down or cut off, or no longer holds the file, having retired it). The file
//     lands in the follower's store; when Process reports Restored, the node's image becomes the
//     snapshot's, its applied offset jumps to it, and the committed entries after it follow. Brokers
//     catch up the same way: a node asked for entries below its log start names its newest snapshot
//     (the controller's pointToSnapshot), and the broker fetches that file from it (FetchSnapshot)
//     and swaps its image in, unless the snapshot is not past what it applied.
//   - Raft's own randomness. Raft draws its randomized election timeouts from crypto/rand. The tests
//     replace that source per seed with testing/cryptotest.SetGlobalRandom, which is why seeds run one
//     after another instead of in parallel: a shared source would make a seed's draws depend on the
//     others.
//   - Clients. At random steps a client proposes one to three batches on a node: usually the leader
//     once it is active (below), sometimes a leader that is not yet active or a node that does not
//     lead. Each batch is a metadatapb.RecordBatch whose records carry a unique config
//     value, so every batch is distinguishable. Clients never write metadata.version: a raw
//     FeatureLevelRecord could lower it under ACLs the image holds, which no product writer does. onProposed gives the (offset, epoch) of each; the write
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
//   - metadata.version, ACLs and quotas (features.go). The log starts without a metadata.version, as
//     it always has here (the sim writes no bootstrap; the first upgrade sets it). Now and then the
//     active controller decides, against its speculative image and with the product's decision
//     (controller.UpdateMetadataVersion), an upgrade, a safe or an unsafe downgrade to a random level,
//     or, when the level allows them, creates 1–3 ACLs (level 3) or sets and removes client quotas
//     (level 4, metadatalog.QuotaRecord). A refusal writes nothing; an unsafe downgrade is the one
//     batch that removes what the lower level cannot represent and then sets it. Three downgrades in
//     ten are followed, 0–30 steps later, by a crash of their leader or a partition that cuts it off,
//     so that many race a failover. Each node models the Snapshotter's rule for downgrades: a
//     metadata.version below that of the last image it saw (per Process, as per log event; 0 at a
//     start, as NewSnapshotter has it) makes a snapshot due at once, a purge, whose compaction keeps
//     no catch-up tail and whose retention keeps no older file. (The purge's rewrite of the WAL,
//     Log.compact's Rewrite, is not modelled.)
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
//     the same epoch and data.
//  3. No acknowledged append is lost: after convergence every acknowledged (offset, epoch, data) is in
//     the committed history and in every node's committed log, or below the snapshot the node holds
//     it in (whose image invariant 15 checks). An acknowledgement with other data than proposed also
//     fails.
//  4. Every node's image, maintained batch by batch, equals a fresh replay of its committed log from the
//     snapshot it started from or last installed.
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
//  11. Partitions are well formed: at every offset of the committed history, every partition of every
//     topic exists, has a non-empty ISR drawn from its replicas, and a leader in that ISR or none.
//  12. No partition is led by a fenced or unregistered broker, at any offset of the committed history.
//  13. Partitions heal: once every broker is live, every partition in the leader's committed image
//     gets a leader and its full ISR back.
//  14. A snapshot holds the committed image: each file, when written, holds exactly the records of the
//     committed history's image at its offset (in the same epoch), and rebuilds that image.
//  15. image(snapshot + tail) = image(full replay): every image a node holds equals the committed
//     history's at the same offset, record for record and in its derived partition index (what each
//     broker leads and whose ISR it is in, whatever the order): right after a restart from a snapshot,
//     right after installing the leader's, at every checkpoint and at the end. A broker's image
//     caught up by snapshot is held to the same rule.
//  16. Applied offsets move one at a time: each node applies offset applied+1 next, never one it has or
//     one past it, except by a snapshot Raft reports as Restored, which must lie above what it applied;
//     the committed entries then continue right after it.
//  17. A crash never leaves a node that cannot start: at every restart the node's newest snapshot with
//     a valid marker opens the WAL (the segment holding the marker survives, the entries after it have
//     no gap), or, with none, the WAL still holds the log from its beginning. This covers a crash
//     during a snapshot write, between the file and its marker, in the middle of the marker's fsync,
//     and right after a release: the node must restart from its previous snapshot and log.
//  18. A downgrade racing a leader failover happens entirely or not at all. Every committed entry (and
//     every batch an active controller proposes) that takes metadata.version below 3 (below 4) holds,
//     before its FeatureLevelRecord, the removal of every ACL (client quota) the image before it held
//     or the batch added; no image any node or broker holds, built from the log or loaded from a
//     snapshot, is below 3 with ACLs or below 4 with client quotas. A downgrade's batches all commit
//     or none does, whatever failover comes between them. Its answer is acknowledged only once its
//     entry committed in the proposing leader's epoch, and then the message's counts ("dropped N ACL
//     entries and M client-quota entries") are what the committed entry removed; an accepted request
//     carries that message exactly when it is an unsafe downgrade that lowers the level.
//  19. Snapshots follow a downgrade down: once a node's writer is done with a snapshot (its compaction
//     taken by the log, retention run), no older file the node keeps holds an ACL (client quota)
//     while that snapshot is below metadata.version 3 (4). After a committed downgrade, the next
//     snapshot is at the lower level and purges every older one, on every node: the one that
//     proposed it, one that crashed before its purge was durable, one that was down while it
//     committed, one that installs it from the leader.
//
// Invariant 0 stands for everything else that must not happen: a Raft panic, a Process error other than
// an injected crash, or a proposal Raft accepted without reporting its offset.
//
// A failure names the seed and the command that replays it. TestBrokenDiskIsCaught runs the same
// harness over a disk that ignores mustSync, and asserts that the checker notices: a checker that never
// fails proves nothing. TestBrokenBrokersAreCaught does the same for invariants 7–10 and 12, with a
// Sabotage each: registrations one epoch off, every expiry fence written twice, Metadata listing fenced
// brokers, heartbeats that never report progress, and fences that leave the fenced broker leading.
// TestBrokenSnapshotsAreCaught does it for 14 and 15: a snapshot written without one of its image's
// records, and a correct snapshot loaded without its first record. TestBrokenDowngradesAreCaught does
// it for 18: an unsafe downgrade written as two batches (the removals, then the level once they have
// committed), which a failover in between leaves half done, and one that leaves an ACL or quota
// behind, which must be reported as 18 before the image refuses it. TestSim also asserts that, over
// its seeds, snapshots are written, logs compacted and segments released, snapshots installed from
// the leader, nodes restarted from a snapshot, writes and compactions cut short by crashes, downloads
// failed, brokers caught up by snapshot and files retired, each many times; and that downgrades are
// proposed, committed, acknowledged, lost to a failover and raced by one, that levels 3 and 4 are
// reached and left, ACLs and quotas created and dropped, and purge snapshots written, many times.
//
// # Product bugs found
//
// The simulation found four bugs in the snapshot support, all now fixed in the product (the fourth:
// the Snapshotter forgot a downgrade across a restart — its level started at 0, so a node that
// restarted after a committed downgrade it had not purged for never purged; it now starts at the
// highest metadata.version of its starting image and of the snapshots on disk; the others are listed
// below). Release and restoresync are in Replica, which the simulation runs as it is; retention and
// the Snapshotter's start are modelled (retire, snapshotterStartLevel), after the product's
// Snapshotter and ApplyRetention, so a change to their rules must be made there too.
//
//   - retention: retention could remove the only snapshot a restart can open at before the new one's
//     marker was in the log; Log.Compact now returns once the marker is saved, and ApplyRetention
//     never removes the newest snapshot nor one at or after the one just written.
//   - release: releasing the log up to a snapshot's offset + 1 could delete the segment holding its
//     marker; Replica.Process now releases up to a restored snapshot's offset, and Replica.Compact
//     never past the snapshot's.
//   - restoresync: the hard state that commits a restored snapshot was saved without an fsync before
//     its acknowledgement went out; Replica.Process now asks for the sync, and WALDisk.Save honours it.
package sim
