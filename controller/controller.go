// Package controller is the quorum controller: one event loop that turns requests into metadata records,
// writes them to the replicated log when this node is the active controller, and replays what the log
// commits into its image. Standby controllers replay too, so any of them can take over at once.
//
// Each Kafka API it serves lives in a file named after it; the pure decisions (image × request →
// records, response) live in the *control files and in quorumState, which do no I/O.
package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
)

// Config wires a controller to its log.
type Config struct {
	NodeID    int32
	ClusterID string
	// Voters maps each voter to its controller address, for forwarding to the leader.
	Voters    map[int32]string
	Log       *metadatalog.Log
	Bootstrap *metadatapb.RecordBatch
	Logger    *slog.Logger
	// OnFatal is called once if the controller meets state it cannot trust (an impossible record, a
	// failed disk); the process must stop.
	OnFatal func(error)
	// SessionTimeout is broker.session.timeout.ms: a broker not heard from for this long is fenced.
	// Zero means DefaultSessionTimeout (9s).
	SessionTimeout time.Duration
	// MaxPartitionsPerRequest bounds the partitions one CreateTopics or CreatePartitions request may
	// create, and so the size of one batch. Zero means DefaultMaxPartitionsPerRequest (100,000).
	MaxPartitionsPerRequest int
	// SnapshotPolicy says when this controller snapshots its image and which snapshots it keeps. The
	// zero value means metadatalog.DefaultSnapshotPolicy.
	SnapshotPolicy metadatalog.SnapshotPolicy
	// SupportedMaxMetadataVersion is metadata.version.supported.max: the newest level this controller
	// supports, so it can act like older software. Zero means the latest.
	SupportedMaxMetadataVersion int16
}

// Controller serves the controller port's Kafka APIs and owns the metadata state machine.
type Controller struct {
	cfg  Config
	log  *slog.Logger
	mlog *metadatalog.Log

	// Owned by the event loop goroutine.
	state    *quorumState
	features featureControl
	cluster  clusterControl
	sessions *brokerSessions // soft state: held only while active
	snaps    *metadatalog.Snapshotter

	events chan func()
	stopc  chan struct{}
	donec  chan struct{}
	once   sync.Once

	// Published by the loop for handlers that only need to know who leads.
	leader atomic.Uint64
	epoch  atomic.Uint64
	active atomic.Bool
	image  atomic.Pointer[metadatalog.Image]

	fwd forwarder
}

// New creates a controller; Start runs it.
func New(cfg Config) *Controller {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SnapshotPolicy == (metadatalog.SnapshotPolicy{}) {
		cfg.SnapshotPolicy = metadatalog.DefaultSnapshotPolicy
	}
	initial := metadatalog.EmptyImage()
	snaps := metadatalog.SnapshotterConfig{Policy: cfg.SnapshotPolicy, ClusterID: cfg.ClusterID, Logger: cfg.Logger}
	if cfg.Log != nil { // nil only in tests of handlers that never reach the log
		initial = cfg.Log.InitialImage()
		snaps.Dir, snaps.Voters = cfg.Log.SnapshotDir(), cfg.Log.Voters()
		// The log drops what the snapshot holds only once the file is durable.
		snaps.Written = func(h snapshot.Header, _ string, purge bool) error { return cfg.Log.Compact(h.Offset, purge) }
	}
	c := &Controller{
		cfg: cfg, log: cfg.Logger, mlog: cfg.Log,
		cluster: clusterControl{clusterID: cfg.ClusterID}, sessions: newBrokerSessions(cfg.SessionTimeout),
		state:    newQuorumState(uint64(cfg.NodeID), initial),
		features: featureControl{supportedMax: cfg.SupportedMaxMetadataVersion},
		snaps:    metadatalog.NewSnapshotter(snaps, initial, time.Now()),
		events:   make(chan func(), 1024),
		stopc:    make(chan struct{}), donec: make(chan struct{}),
		fwd: forwarder{clientID: fmt.Sprintf("%s%d", forwardedClientPrefix, cfg.NodeID), clients: map[string]*kgo.Client{}},
	}
	c.image.Store(c.state.committed)
	c.state.publish = c.image.Store
	return c
}

// Start runs the event loop.
func (c *Controller) Start() { go c.run() }

// Close stops the loop; parked requests fail with NOT_CONTROLLER.
func (c *Controller) Close() {
	c.once.Do(func() { close(c.stopc) })
	<-c.donec
	c.snaps.Wait()
	c.fwd.close()
}

// APIs lists what the controller port serves besides ApiVersions.
func (c *Controller) APIs() map[int16]kafkaserver.VersionRange {
	return map[int16]kafkaserver.VersionRange{
		(&kmsg.DescribeQuorumRequest{}).Key():  {Min: 0, Max: 2},
		(&kmsg.UpdateFeaturesRequest{}).Key():  {Min: 0, Max: 2},
		(&kmsg.DescribeClusterRequest{}).Key(): {Min: 0, Max: 2},
		(&kmsg.FetchRequest{}).Key():           {Min: 4, Max: 12},
		(&kmsg.FetchSnapshotRequest{}).Key():   {Min: 0, Max: 1},

		// Cluster membership: what kmsg and Kafka both serve.
		(&kmsg.BrokerRegistrationRequest{}).Key(): {Min: 0, Max: 4},
		(&kmsg.BrokerHeartbeatRequest{}).Key():    {Min: 0, Max: 2},
		(&kmsg.UnregisterBrokerRequest{}).Key():   {Min: 0, Max: 0},

		// Partition leadership: every version kmsg knows, which is every version Kafka serves.
		(&kmsg.AlterPartitionRequest{}).Key(): {Min: 0, Max: 3},
		(&kmsg.ElectLeadersRequest{}).Key():   {Min: 0, Max: 2},

		// Topics: every version kmsg knows, which is every version Kafka serves.
		(&kmsg.CreateTopicsRequest{}).Key():     {Min: 0, Max: 7},
		(&kmsg.DeleteTopicsRequest{}).Key():     {Min: 0, Max: 6},
		(&kmsg.CreatePartitionsRequest{}).Key(): {Min: 0, Max: 3},

		// Configs: every version kmsg knows, which is every version Kafka serves.
		(&kmsg.IncrementalAlterConfigsRequest{}).Key(): {Min: 0, Max: 1},
		(&kmsg.DescribeConfigsRequest{}).Key():         {Min: 0, Max: 4},

		// ACLs: every version kmsg knows, which is every version Kafka serves.
		(&kmsg.CreateACLsRequest{}).Key():   {Min: 0, Max: 3},
		(&kmsg.DescribeACLsRequest{}).Key(): {Min: 0, Max: 3},
		(&kmsg.DeleteACLsRequest{}).Key():   {Min: 0, Max: 3},

		// Client quotas: every version kmsg knows, which is every version Kafka serves.
		(&kmsg.AlterClientQuotasRequest{}).Key():    {Min: 0, Max: 1},
		(&kmsg.DescribeClientQuotasRequest{}).Key(): {Min: 0, Max: 1},
	}
}

// Handle implements kafkaserver.Handler.
func (c *Controller) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.DescribeQuorumRequest:
		return c.handleDescribeQuorum(ctx, r)
	case *kmsg.UpdateFeaturesRequest:
		return c.handleUpdateFeatures(ctx, r)
	case *kmsg.DescribeClusterRequest:
		return c.handleDescribeCluster(ctx, r)
	case *kmsg.FetchRequest:
		return c.handleFetch(ctx, r)
	case *kmsg.FetchSnapshotRequest:
		return c.handleFetchSnapshot(r), nil
	case *kmsg.BrokerRegistrationRequest:
		return c.handleBrokerRegistration(ctx, r)
	case *kmsg.BrokerHeartbeatRequest:
		return c.handleBrokerHeartbeat(ctx, r)
	case *kmsg.UnregisterBrokerRequest:
		return c.handleUnregisterBroker(ctx, r)
	case *kmsg.AlterPartitionRequest:
		return c.handleAlterPartition(ctx, r)
	case *kmsg.ElectLeadersRequest:
		return c.handleElectLeaders(ctx, r)
	case *kmsg.CreateTopicsRequest:
		return c.handleCreateTopics(ctx, r)
	case *kmsg.DeleteTopicsRequest:
		return c.handleDeleteTopics(ctx, r)
	case *kmsg.CreatePartitionsRequest:
		return c.handleCreatePartitions(ctx, r)
	case *kmsg.IncrementalAlterConfigsRequest:
		return c.handleIncrementalAlterConfigs(ctx, r)
	case *kmsg.DescribeConfigsRequest:
		return c.handleDescribeConfigs(ctx, r)
	case *kmsg.CreateACLsRequest:
		return c.handleCreateACLs(ctx, r)
	case *kmsg.DescribeACLsRequest:
		return c.handleDescribeACLs(ctx, r)
	case *kmsg.DeleteACLsRequest:
		return c.handleDeleteACLs(ctx, r)
	case *kmsg.AlterClientQuotasRequest:
		return c.handleAlterClientQuotas(ctx, r)
	case *kmsg.DescribeClientQuotasRequest:
		return c.handleDescribeClientQuotas(ctx, r)
	}
	return nil, fmt.Errorf("the controller does not serve %s", kmsg.NameForKey(req.Key()))
}

// Image is the latest committed image (for tests and the status of this node).
func (c *Controller) Image() *metadatalog.Image { return c.image.Load() }

// Active reports whether this node is the active controller.
func (c *Controller) Active() bool { return c.active.Load() }

func (c *Controller) run() {
	defer close(c.donec)
	sessionCheck := time.NewTicker(sessionCheckInterval(c.sessions.timeout))
	defer sessionCheck.Stop()
	defer func() {
		c.state.resign()
		c.active.Store(false)
	}()
	for {
		select {
		case <-c.stopc:
			return
		case <-c.mlog.Failed():
			if err := c.mlog.Err(); err != nil {
				c.fatal(err)
			}
			return
		case <-c.mlog.Events():
			for _, ev := range c.mlog.TakeEvents() {
				if err := c.handleLogEvent(ev); err != nil {
					c.fatal(err)
					return
				}
			}
		case fn := <-c.events:
			fn()
		case now := <-sessionCheck.C:
			c.expireSessions(now)
			// A snapshot that was due while another was being written, or that failed, is retried
			// here even if nothing new commits.
			c.snaps.Applied(c.state.committed, 0, now)
		}
	}
}

func (c *Controller) fatal(err error) {
	c.log.Error("controller stopping: its metadata cannot be trusted", "err", err)
	if c.cfg.OnFatal != nil {
		c.cfg.OnFatal(err)
	}
}

func (c *Controller) handleLogEvent(ev metadatalog.Event) error {
	if ev.Failed != nil && c.state.active {
		// What we built on that offset is void; give up activity so the speculative image and every
		// parked request are dropped. The leadership change that caused it is normally right behind.
		c.log.Warn("a proposal did not land where expected; resigning as active controller", "expected", ev.Failed.Expected, "err", ev.Failed.Err)
		c.state.resign()
		c.active.Store(false)
	}
	if ev.Leader != nil {
		wasActive := c.state.active
		c.state.leaderChanged(ev.Leader.Leader, ev.Leader.Epoch)
		c.leader.Store(ev.Leader.Leader)
		c.epoch.Store(ev.Leader.Epoch)
		if wasActive && !c.state.active {
			c.log.Info("resigned as active controller", "epoch", ev.Leader.Epoch, "new_leader", ev.Leader.Leader)
		}
	}
	if ev.Restored != nil {
		c.log.Info("installed the leader's snapshot", "offset", ev.Restored.Offset, "epoch", ev.Restored.Epoch, "partitions", ev.Restored.PartitionCount())
		c.state.restore(ev.Restored)
		c.active.Store(false)
		c.snaps.Loaded(ev.Restored.Offset, time.Now())
	}
	activated, err := c.state.applyCommitted(ev.Committed)
	c.image.Store(c.state.committed)
	if err != nil {
		return err
	}
	if lvl, max := c.state.committed.MetadataVersion(), c.features.localMax(); lvl > max {
		v, _ := metadatalog.MetadataVersionByLevel(lvl)
		return fmt.Errorf("the cluster's finalized metadata.version is %d (%s), but this controller supports only %d-%d (metadata.version.supported.max): run software that supports it",
			lvl, v.Name, metadatalog.MinMetadataVersion.Level, max)
	}
	c.snaps.Applied(c.state.committed, committedBytes(ev.Committed), time.Now())
	c.active.Store(c.state.active)
	c.syncSessions(activated)
	if activated {
		c.log.Info("became active controller", "epoch", c.state.epoch, "offset", c.state.committed.Offset)
		if records := c.features.bootstrapRecords(c.state.speculative, c.cfg.Bootstrap); len(records) > 0 {
			c.log.Info("writing bootstrap records to an empty metadata log", "records", len(records))
			return c.write(records, func(bool) {})
		}
		return c.resumeLeadership()
	}
	return nil
}

// committedBytes is what entries weigh in the log, for the snapshot policy.
func committedBytes(entries []metadatalog.Entry) int64 {
	var n int64
	for _, e := range entries {
		n += int64(len(e.Data))
	}
	return n
}

// resumeLeadership finishes, on activation, leader moves that an earlier active controller began but
// did not finish: a non-atomic write (writeInBatches) can lose its last batches to a failover, which
// may leave a broker in controlled shutdown (or, if a log was written otherwise, a fenced one) still
// leading, or partitions offline although an ISR member could lead them. Nothing else would move them:
// a heartbeat writes only when the broker's state changes.
func (c *Controller) resumeLeadership() error {
	for stage := range resumeStages {
		records, what := resumedMoves(c.state.speculative, stage)
		if len(records) == 0 {
			continue
		}
		c.log.Info(what, "partitions", len(records))
		if err := c.writeInBatches(records, func(bool) {}); err != nil {
			return err
		}
	}
	return nil
}

// resumeStages counts resumedMoves' stages.
const resumeStages = 2

// resumedMoves returns the leadership moves of one stage of resumeLeadership, decided against img, and
// what they do: stage 0 moves leadership away from brokers that may not lead; stage 1, decided against
// an image that holds stage 0's moves, elects leaders for offline partitions an ISR member can lead.
func resumedMoves(img *metadatalog.Image, stage int) ([]*metadatapb.Record, string) {
	rc := replicationControl{}
	if stage == 0 {
		records, _ := rc.unfinishedEvictions(img)
		return records, "moving leadership away from brokers that may not lead"
	}
	return rc.electOffline(img), "electing leaders for offline partitions that an ISR member can lead"
}

// write appends records as one batch on behalf of the active controller and parks complete until the
// batch commits (true) or leadership is lost (false). It does not wait for the log: requests queued
// behind it go into the same Raft Ready and share one fsync. It runs on the event loop; only an error
// that must stop the node is returned.
func (c *Controller) write(records []*metadatapb.Record, complete func(committed bool)) error {
	if !c.state.active {
		complete(false)
		return nil
	}
	batch := &metadatapb.RecordBatch{Records: records, AppendTimeMs: time.Now().UnixMilli()}
	data, err := proto.Marshal(batch)
	if err != nil {
		return err
	}
	offset, err := c.state.wrote(batch, complete)
	if err != nil {
		return fmt.Errorf("the controller generated a batch it cannot apply: %w", err)
	}
	if err := c.mlog.ProposeAt(context.Background(), data, offset); err != nil {
		return err
	}
	return nil
}

// batchOffset is the offset at which writeInBatches, starting at offset, places records[index].
func batchOffset(offset uint64, index int) uint64 {
	return offset + uint64(index/maxRecordsPerBatch)
}

// writeInBatches writes a non-atomic result as Kafka's QuorumController appends one: the records in
// order, in batches of at most maxRecordsPerBatch, with complete parked on the last. A result is
// non-atomic when any prefix of it is a state the cluster may be left in (a failover can stop it
// between batches): moving leaders away from a broker before fencing it is, moving half of them is
// too. Records whose meaning depends on others, such as a fence that must not commit before the
// leader moves it needs, come after those.
func (c *Controller) writeInBatches(records []*metadatapb.Record, complete func(committed bool)) error {
	for len(records) > maxRecordsPerBatch {
		if err := c.write(records[:maxRecordsPerBatch:maxRecordsPerBatch], func(bool) {}); err != nil {
			return err
		}
		records = records[maxRecordsPerBatch:]
	}
	return c.write(records, complete)
}

// submit runs fn on the event loop; false if the controller has stopped.
func (c *Controller) submit(ctx context.Context, fn func()) bool {
	select {
	case c.events <- fn:
		return true
	case <-c.donec:
		return false
	case <-ctx.Done():
		return false
	}
}

// writeOutcome is what a write request learns from the loop.
type writeOutcome struct {
	notController bool
	err           error
}

// runOp is the common path of every request that may write: op runs on the loop against the
// speculative image, with the offset its records will land at, and returns them (none for a pure
// validation or a refusal) with its answer. The answer is released when the records commit or can no
// longer; an op that writes nothing answers at once, unless mustWait says its answer depends on a
// write still in flight, in which case it waits for those to commit.
func runOp[T any](ctx context.Context, c *Controller, op func(img *metadatalog.Image, offset uint64, now time.Time) ([]*metadatapb.Record, T), mustWait func() bool) (T, writeOutcome) {
	return runOpWriting(ctx, c, op, mustWait, c.write)
}

// runOpWriting is runOp with the write it uses: c.write for an atomic result (one batch),
// c.writeInBatches for a non-atomic one.
func runOpWriting[T any](ctx context.Context, c *Controller, op func(img *metadatalog.Image, offset uint64, now time.Time) ([]*metadatapb.Record, T), mustWait func() bool,
	write func(records []*metadatapb.Record, complete func(committed bool)) error) (T, writeOutcome) {
	type result struct {
		answer T
		o      writeOutcome
	}
	// Room for two: a write that fails to propose answers with its error, and its parked completion
	// may still fire when leadership goes.
	done := make(chan result, 2)
	ok := c.submit(ctx, func() {
		if !c.state.active {
			done <- result{o: writeOutcome{notController: true}}
			return
		}
		records, answer := op(c.state.speculative, c.state.nextOffset, time.Now())
		complete := func(committed bool) { done <- result{answer: answer, o: writeOutcome{notController: !committed}} }
		if len(records) == 0 {
			if mustWait != nil && mustWait() {
				c.state.afterPending(complete)
			} else {
				complete(true)
			}
			return
		}
		if err := write(records, complete); err != nil {
			done <- result{o: writeOutcome{err: err}}
			c.fatal(err)
		}
	})
	var zero T
	if !ok {
		return zero, writeOutcome{notController: true}
	}
	select {
	case r := <-done:
		return r.answer, r.o
	case <-ctx.Done():
		return zero, writeOutcome{err: ctx.Err()}
	}
}

// runWrite is runOp for requests whose answer is decided entirely by generate.
func (c *Controller) runWrite(ctx context.Context, generate func(img *metadatalog.Image, offset uint64) []*metadatapb.Record) writeOutcome {
	_, o := runOp(ctx, c, func(img *metadatalog.Image, offset uint64, _ time.Time) ([]*metadatapb.Record, struct{}) {
		return generate(img, offset), struct{}{}
	}, nil)
	return o
}
