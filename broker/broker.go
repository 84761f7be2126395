// Package broker is the broker role: a node that registers with the controller quorum, keeps its session
// alive with heartbeats, follows the metadata log into its own image, and serves that image to ordinary
// Kafka clients on the broker port (ApiVersions, Metadata, DescribeCluster, DescribeConfigs). Admin
// writes (topics, configs, elections, features) and DescribeQuorum it forwards to the controllers
// (forward.go, describe_quorum.go). As a partition leader it grows ISRs back when replicas return
// (alter_partition.go). When the log it needs next is gone, it catches up by downloading a controller's
// snapshot (fetch_snapshot.go); it keeps its own newest snapshots in its metadata.log.dir and restarts
// from them (snapshots.go).
//
// It reaches controllers only over the network, through the Kafka protocol (franz-go), and shares no
// state with them: the image code under metadatalog is all the two roles have in common.
//
// Each Kafka API it serves or sends lives in a file named after it. The decisions that need no network
// (the lifecycle in nextState, the answers built from an image) are pure functions, tested without one.
package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Listener is one advertised broker listener, as listed in advertised.listeners.
type Listener struct {
	Name string
	Host string
	Port int32
	// SecurityProtocol is the protocol's name, as in listener.security.protocol.map; empty means
	// PLAINTEXT.
	SecurityProtocol string
}

// Config is what a broker needs to join a cluster.
type Config struct {
	NodeID    int32
	ClusterID string
	// Controllers maps each voter id to its controller address (controller.quorum.voters).
	Controllers map[int32]string
	// Listeners are the advertised broker listeners; the first is the default for Handler.
	Listeners []Listener
	Rack      string
	// HeartbeatInterval (broker.heartbeat.interval.ms, default 2s) and SessionTimeout
	// (broker.session.timeout.ms, default 9s). The session timeout is enforced by the controller; the
	// broker uses it only to warn when it has been unable to heartbeat for that long.
	HeartbeatInterval, SessionTimeout time.Duration
	// FetchMaxWait is how long a controller may hold a log-follow fetch open with nothing new
	// (default 500ms).
	FetchMaxWait time.Duration
	// RequestTimeout bounds one request to a controller beyond any wait it asks for (default 5s).
	RequestTimeout time.Duration
	// SupportedMetadataVersion is the [min, max] metadata.version this broker runs (default: every
	// level this software knows). Lowering max rehearses a rolling upgrade with an older node.
	SupportedMetadataVersion [2]int16
	// Dir is the broker's formatted metadata.log.dir. The broker keeps its newest metadata snapshots in
	// metadatalog.SnapshotDir(Dir): it starts from the newest one that reads cleanly, writes new ones
	// by SnapshotPolicy, and keeps there the snapshot it downloads when it has fallen below the
	// controllers' log start. Empty means no snapshot files: the broker starts from an empty image,
	// and a download goes to a temporary directory that is removed once the snapshot is loaded.
	Dir string
	// SnapshotPolicy says when the broker snapshots its image and which snapshots it keeps
	// (metadata.log.max.record.bytes.between.snapshots, metadata.log.max.snapshot.interval.ms,
	// metadata.max.retention.bytes, metadata.max.retention.ms). The zero value means
	// metadatalog.DefaultSnapshotPolicy; otherwise each zero field turns its rule off. Used only with
	// Dir.
	SnapshotPolicy metadatalog.SnapshotPolicy
	Logger         *slog.Logger
	Knobs          Knobs
}

// Knobs are hooks for tests. The zero value is production behaviour; nothing here is global.
type Knobs struct {
	// BackoffMin and BackoffMax bound retry delays (defaults 100ms and 2s).
	BackoffMin, BackoffMax time.Duration
	// NoRandomStart makes the search for the active controller start at the lowest voter id instead
	// of a random one, so a test knows which controller is asked first.
	NoRandomStart bool
	// OnStateChange, if set, is called after every lifecycle transition, in order, from the goroutine
	// that made it. It must not call back into the Broker's Shutdown or Close.
	OnStateChange func(from, to State)

	// snapshotChunkBytes is the MaxBytes of each FetchSnapshot request (0: snapshot.DefaultChunkBytes),
	// so a test sees a small snapshot downloaded in many chunks.
	snapshotChunkBytes int32
}

const (
	defaultHeartbeatInterval = 2 * time.Second
	defaultSessionTimeout    = 9 * time.Second
	defaultFetchMaxWait      = 500 * time.Millisecond
	defaultRequestTimeout    = 5 * time.Second
	// pendingShutdownHeartbeat is the heartbeat interval during a controlled shutdown: the controller
	// is moving leaderships away and waits for us to ask again, and a shutdown should not take several
	// regular intervals.
	pendingShutdownHeartbeat = 100 * time.Millisecond
)

// withDefaults fills the zero fields.
func (cfg Config) withDefaults() Config {
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = defaultHeartbeatInterval
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = defaultSessionTimeout
	}
	if cfg.FetchMaxWait <= 0 {
		cfg.FetchMaxWait = defaultFetchMaxWait
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = defaultRequestTimeout
	}
	if cfg.SupportedMetadataVersion == [2]int16{} {
		cfg.SupportedMetadataVersion = [2]int16{metadatalog.MinMetadataVersion.Level, metadatalog.LatestMetadataVersion.Level}
	}
	if cfg.Knobs.BackoffMin <= 0 {
		cfg.Knobs.BackoffMin = defaultBackoffMin
	}
	if cfg.Knobs.BackoffMax <= 0 {
		cfg.Knobs.BackoffMax = defaultBackoffMax
	}
	cfg.Knobs.BackoffMax = max(cfg.Knobs.BackoffMax, cfg.Knobs.BackoffMin)
	if cfg.SnapshotPolicy == (metadatalog.SnapshotPolicy{}) {
		cfg.SnapshotPolicy = metadatalog.DefaultSnapshotPolicy
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// Validate reports the first thing that would stop this configuration from working, naming the
// field. Start runs it too, and reports a failure on Fatal.
func (cfg Config) Validate() error {
	if cfg.NodeID < 0 {
		return fmt.Errorf("broker: node id %d is negative", cfg.NodeID)
	}
	if cfg.ClusterID == "" {
		return errors.New("broker: the cluster id is empty")
	}
	if len(cfg.Controllers) == 0 {
		return errors.New("broker: no controllers are configured (controller.quorum.voters)")
	}
	for id, addr := range cfg.Controllers {
		if addr == "" {
			return fmt.Errorf("broker: controller %d has no address", id)
		}
	}
	if len(cfg.Listeners) == 0 {
		return errors.New("broker: no listeners are configured")
	}
	seen := map[string]bool{}
	for _, l := range cfg.Listeners {
		if l.Name == "" {
			return fmt.Errorf("broker: a listener at %s:%d has no name", l.Host, l.Port)
		}
		if seen[l.Name] {
			return fmt.Errorf("broker: listener %s is configured twice", l.Name)
		}
		seen[l.Name] = true
		if l.Port <= 0 || l.Port > 65535 {
			return fmt.Errorf("broker: listener %s has port %d, outside 1-65535", l.Name, l.Port)
		}
		if _, err := securityProtocolID(l.SecurityProtocol); err != nil {
			return fmt.Errorf("broker: listener %s: %w", l.Name, err)
		}
	}
	if mv := cfg.SupportedMetadataVersion; mv != [2]int16{} && (mv[0] < 1 || mv[0] > mv[1]) {
		return fmt.Errorf("broker: supported metadata.version range %d-%d is invalid", mv[0], mv[1])
	}
	if p := cfg.SnapshotPolicy; p.MaxBytes < 0 || p.MaxInterval < 0 || p.RetentionBytes < 0 || p.RetentionTime < 0 {
		return fmt.Errorf("broker: the snapshot policy has a negative limit (%d bytes or %s between snapshots, %d bytes or %s kept)",
			p.MaxBytes, p.MaxInterval, p.RetentionBytes, p.RetentionTime)
	}
	return nil
}

// securityProtocolID maps a protocol name to Kafka's SecurityProtocol id.
func securityProtocolID(name string) (int16, error) {
	switch name {
	case "", "PLAINTEXT":
		return 0, nil
	case "SSL":
		return 1, nil
	case "SASL_PLAINTEXT":
		return 2, nil
	case "SASL_SSL":
		return 3, nil
	}
	return 0, fmt.Errorf("unknown security protocol %q (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", name)
}

// Broker is one broker process's role. Create it with New, run it with Start.
type Broker struct {
	cfg         Config
	log         *slog.Logger
	q           *quorum
	incarnation [16]byte

	// ctx ends every goroutine and in-flight request; cancel is called by Close and on a fatal error.
	ctx    context.Context
	cancel context.CancelFunc
	// shutdownCtx is cancelled by Shutdown: the request for a controlled shutdown.
	shutdownCtx     context.Context
	requestShutdown context.CancelFunc
	// controlledDone is closed when the controller has let the broker go (or it had nothing to hand
	// over).
	controlledDone chan struct{}

	// Wake-ups between the session and the follower, each holding at most one pending signal:
	// activeChanged cuts short a follower's backoff when the session finds the active controller, and
	// applied lets a fenced broker heartbeat as soon as it has caught up with its own registration
	// instead of a heartbeat interval later.
	activeChanged, applied chan struct{}
	// imageChanged wakes the ISR expansion (alter_partition.go) when the follower applies an image.
	imageChanged chan struct{}

	// Published for handlers and observers; written by the goroutines that own them.
	image         atomic.Pointer[metadatalog.Image]
	epoch         atomic.Int64 // broker epoch; -1 while unregistered
	active        atomic.Int32 // the active controller's id; -1 when unknown
	hw            atomic.Int64 // the high watermark of the last fetch answer; -1 before one
	lastHeartbeat atomic.Int64 // unix nanos of the last answered heartbeat

	// snapshotter writes the image into Dir by the snapshot policy; nil without Dir. Set by Start,
	// then owned by the follower, which replaces it after a download; Close waits for its last write.
	snapshotter *metadatalog.Snapshotter

	mu struct {
		sync.Mutex
		state    State
		started  bool
		fatalErr error
	}
	wg    sync.WaitGroup
	done  chan struct{} // closed when Start's goroutines have all returned
	fatal chan error
	once  struct{ fatal, close, controlled sync.Once }
}

// New creates a broker; nothing runs until Start.
func New(cfg Config) *Broker {
	cfg = cfg.withDefaults()
	b := &Broker{
		cfg: cfg,
		// The node attribute is the caller's: a combined node shares one logger between its roles.
		log:            cfg.Logger.With("component", "broker"),
		q:              newQuorum(cfg.Controllers, fmt.Sprintf("kraft-broker-%d", cfg.NodeID)),
		controlledDone: make(chan struct{}),
		activeChanged:  make(chan struct{}, 1),
		applied:        make(chan struct{}, 1),
		imageChanged:   make(chan struct{}, 1),
		done:           make(chan struct{}),
		fatal:          make(chan error, 1),
	}
	// A fresh incarnation per process start is how the controller tells a restart from a retry.
	if _, err := rand.Read(b.incarnation[:]); err != nil {
		panic(fmt.Sprintf("broker: no randomness for the incarnation id: %v", err))
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.shutdownCtx, b.requestShutdown = context.WithCancel(context.Background())
	b.image.Store(metadatalog.EmptyImage())
	b.epoch.Store(-1)
	b.active.Store(-1)
	b.hw.Store(-1)
	return b
}

// Start registers with the quorum, heartbeats, and follows the metadata log, each in the background.
// A configuration that cannot work is reported on Fatal. Start after Close does nothing.
func (b *Broker) Start() {
	b.mu.Lock()
	if b.mu.started || b.ctx.Err() != nil {
		b.mu.Unlock()
		return
	}
	b.mu.started = true
	b.mu.Unlock()

	if err := b.cfg.Validate(); err != nil {
		b.fail(err)
		close(b.done)
		return
	}
	b.transition(lifecycleEvent{kind: evStart})
	b.log.Info("broker starting", "cluster_id", b.cfg.ClusterID, "controllers", len(b.cfg.Controllers),
		"metadata_version_min", b.cfg.SupportedMetadataVersion[0], "metadata_version_max", b.cfg.SupportedMetadataVersion[1])
	if b.cfg.Dir != "" {
		// Before anything runs: the first fetch and the first heartbeat carry the loaded offset.
		img := b.loadSnapshot()
		b.image.Store(img)
		b.snapshotter = b.newSnapshotter(img)
	}
	b.wg.Add(3)
	go func() { defer b.wg.Done(); b.runSession() }()
	go func() { defer b.wg.Done(); b.runFollower() }()
	go func() { defer b.wg.Done(); b.runISRExpansion() }()
	go func() {
		b.wg.Wait()
		// Both goroutines are gone (Close, a fatal error, or a granted shutdown and then Close), so
		// this transition cannot race theirs.
		b.transition(lifecycleEvent{kind: evStopped})
		close(b.done)
	}()
}

// Shutdown performs a controlled shutdown, as on SIGTERM: it heartbeats with WantShutDown until the
// controller answers ShouldShutDown (it has moved this broker's leaderships away), then stops. If ctx
// ends first, it stops anyway and returns ctx's error; a fatal error during the wait is returned too.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	started := b.mu.started
	b.mu.Unlock()
	if !started {
		b.Close()
		return nil
	}
	b.log.Info("controlled shutdown requested")
	b.requestShutdown()
	var err error
	select {
	case <-b.controlledDone:
		b.log.Info("controlled shutdown granted; stopping")
	case <-b.done:
		// Stopped for another reason: Close, or a fatal error.
		if ferr := b.fatalErr(); ferr != nil {
			err = ferr
		}
	case <-ctx.Done():
		err = fmt.Errorf("controlled shutdown did not complete: %w", context.Cause(ctx))
		b.log.Warn("controlled shutdown did not complete in time; stopping anyway", "err", err)
	}
	b.Close()
	return err
}

// Close stops at once: no more heartbeats, fetches or registrations. The controller fences the broker
// when its session expires. The handlers keep answering from the last image.
func (b *Broker) Close() {
	b.once.close.Do(func() {
		b.cancel()
		b.mu.Lock()
		started := b.mu.started
		b.mu.started = true // a later Start must not run
		b.mu.Unlock()
		if started {
			<-b.done
		}
		if b.snapshotter != nil {
			// The follower has stopped, so no new write starts; let the one in flight finish, so the
			// process exits with a complete snapshot rather than a .part.
			b.snapshotter.Wait()
		}
		b.q.close()
		b.transition(lifecycleEvent{kind: evStopped})
		b.log.Info("broker stopped", "broker_epoch", b.epoch.Load(), "offset", b.image.Load().Offset)
	})
}

// Fatal delivers the error that forces the broker to exit (for example, the cluster's metadata.version
// is outside what this broker supports, or the log holds a record it cannot apply), then is closed. The
// broker has already stopped talking to the quorum when it arrives; the process should exit non-zero.
func (b *Broker) Fatal() <-chan error { return b.fatal }

// State is the broker's lifecycle state.
func (b *Broker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.state
}

// Image is the latest metadata image this broker has applied.
func (b *Broker) Image() *metadatalog.Image { return b.image.Load() }

// Epoch is the broker epoch of the current registration, -1 while unregistered.
func (b *Broker) Epoch() int64 { return b.epoch.Load() }

// ControllerID is the active controller as last seen by this broker, -1 when unknown.
func (b *Broker) ControllerID() int32 { return b.active.Load() }

// HighWatermark is the controllers' commit offset from the last log-follow answer, -1 before one.
func (b *Broker) HighWatermark() int64 { return b.hw.Load() }

// CaughtUp reports whether the applied image has reached the high watermark of the last answer.
func (b *Broker) CaughtUp() bool {
	hw := b.hw.Load()
	return hw >= 0 && int64(b.image.Load().Offset) >= hw
}

// transition feeds one event to the lifecycle and logs the move.
func (b *Broker) transition(ev lifecycleEvent) State {
	b.mu.Lock()
	from := b.mu.state
	to := nextState(from, ev)
	b.mu.state = to
	b.mu.Unlock()
	if from != to {
		b.log.Debug("broker state", "from", from, "to", to, "event", ev.kind)
		if b.cfg.Knobs.OnStateChange != nil {
			b.cfg.Knobs.OnStateChange(from, to)
		}
	}
	return to
}

// fail stops the broker for an error it must not run past, and reports it on Fatal.
func (b *Broker) fail(err error) {
	b.once.fatal.Do(func() {
		b.log.Error("broker must stop", "err", err, "broker_epoch", b.epoch.Load(), "offset", b.image.Load().Offset)
		b.mu.Lock()
		b.mu.fatalErr = err
		b.mu.Unlock()
		b.fatal <- err
		close(b.fatal)
		b.cancel()
	})
}

// fatalErr is the fatal error, if one happened, without taking it from Fatal's channel.
func (b *Broker) fatalErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.fatalErr
}

func (b *Broker) newBackoff() backoff {
	return backoff{min: b.cfg.Knobs.BackoffMin, max: b.cfg.Knobs.BackoffMax}
}

// APIs lists what the broker port serves besides ApiVersions. Data-plane APIs are out of scope and
// deliberately absent, so clients never try them.
func (b *Broker) APIs() map[int16]kafkaserver.VersionRange {
	apis := map[int16]kafkaserver.VersionRange{
		(&kmsg.MetadataRequest{}).Key():        {Min: 0, Max: metadataMaxVersion},
		(&kmsg.DescribeClusterRequest{}).Key(): {Min: 0, Max: describeClusterMaxVersion},
		(&kmsg.DescribeQuorumRequest{}).Key():  {Min: 0, Max: describeQuorumMaxVersion},
		(&kmsg.DescribeConfigsRequest{}).Key(): {Min: 0, Max: describeConfigsMaxVersion},
		(&kmsg.DescribeACLsRequest{}).Key():    {Min: 0, Max: describeACLsMaxVersion},

		// Client quotas, answered from this broker's image (AlterClientQuotas is forwarded).
		(&kmsg.DescribeClientQuotasRequest{}).Key(): {Min: 0, Max: describeClientQuotasMaxVersion},
	}
	// The admin APIs forwarded to the active controller (forward.go).
	for key, api := range forwardedAPIs {
		apis[key] = api.versions
	}
	return apis
}

// poke leaves a signal on ch unless one is already pending.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
