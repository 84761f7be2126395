//go:build linux

package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kraftgo/kraft/broker"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// fleet is a set of brokers running in this process against the real controllers: each registers,
// heartbeats and follows the log over loopback exactly as a broker process would, and only shares the
// benchmark's CPU. Their WARN and ERROR lines go to one file, counted in the report.
type fleet struct {
	c       *cluster
	firstID int32
	brokers []*broker.Broker
	logPath string
	logf    *os.File
	logger  *slog.Logger
}

func newFleet(c *cluster, firstID int32) (*fleet, error) {
	path := filepath.Join(c.dir, "brokers.log")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &fleet{c: c, firstID: firstID, logPath: path, logf: f,
		logger: slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn}))}, nil
}

// grow starts brokers until the fleet has n, with consecutive ids from firstID.
func (f *fleet) grow(n int) {
	for len(f.brokers) < n {
		id := f.firstID + int32(len(f.brokers))
		b := broker.New(broker.Config{
			NodeID:      id,
			ClusterID:   f.c.clusterID,
			Controllers: f.c.addrs,
			// Advertised only: nothing listens there, and nothing in the benchmark connects to it.
			Listeners: []broker.Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 20000 + id}},
			Logger:    f.logger.With("node", id),
		})
		b.Start()
		f.brokers = append(f.brokers, b)
	}
}

// minOffset is the lowest applied offset among the fleet's brokers: an entry is visible in every
// broker's image once this reaches its offset. It costs one atomic load per broker.
func (f *fleet) minOffset() uint64 {
	lowest := ^uint64(0)
	for _, b := range f.brokers {
		lowest = min(lowest, b.Image().Offset)
	}
	return lowest
}

// awaitRunning waits until every broker is unfenced (RUNNING) and has applied everything the leader
// at addr has committed.
func (f *fleet) awaitRunning(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := f.c.alive(); err != nil {
			return err
		}
		running := 0
		for _, b := range f.brokers {
			select {
			case err, ok := <-b.Fatal():
				if ok {
					return fmt.Errorf("broker stopped: %w", err)
				}
			default:
			}
			if b.State() == broker.StateRunning {
				running++
			}
		}
		if running == len(f.brokers) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			q, err := f.c.describeQuorum(ctx, addr)
			cancel()
			if err == nil && f.minOffset() >= uint64(q.hwm) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d brokers RUNNING and lowest applied offset %d after %v", running, len(f.brokers), f.minOffset(), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts every broker down as on SIGTERM (a controlled shutdown, which fences it), then removes its
// registration with UnregisterBroker, so that later measurements run against an image without them.
func (f *fleet) stop(addr string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.brokers))
	for i, b := range f.brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			errs[i] = b.Shutdown(ctx)
		}()
	}
	wg.Wait()
	f.logf.Close()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	ids := make([]int32, len(f.brokers))
	for i := range ids {
		ids[i] = f.firstID + int32(i)
	}
	return unregisterAll(addr, ids, 16)
}

// complaints are the WARN and ERROR lines the fleet's brokers logged.
func (f *fleet) complaints() []string {
	b, err := os.ReadFile(f.logPath)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return out
}

// quorumClient is a client for the controller-only APIs a broker sends (registration, heartbeat,
// unregistration) to one controller. franz-go refuses request keys missing from its version table, so
// those keys are listed explicitly; the versions are still negotiated with the controller.
func quorumClient(addr string) (*kgo.Client, error) {
	vs := kversion.Stable()
	for _, r := range []kmsg.Request{&kmsg.BrokerRegistrationRequest{}, &kmsg.BrokerHeartbeatRequest{}, &kmsg.UnregisterBrokerRequest{}} {
		if _, ok := vs.LookupMaxKeyVersion(r.Key()); !ok {
			vs.SetMaxKeyVersion(r.Key(), r.MaxVersion())
		}
	}
	return kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(vs))
}

// registerBroker registers broker id as a new incarnation and returns its broker epoch.
func registerBroker(ctx context.Context, cl *kgo.Client, clusterID string, id int32) (int64, error) {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID = id
	req.ClusterID = clusterID
	if _, err := rand.Read(req.IncarnationID[:]); err != nil {
		return 0, err
	}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "127.0.0.1", uint16(20000+id%40000)
	req.Listeners = append(req.Listeners, l)
	f := kmsg.NewBrokerRegistrationRequestFeature()
	f.Name = metadatalog.MetadataVersionFeature
	f.MinSupportedVersion, f.MaxSupportedVersion = metadatalog.MinMetadataVersion.Level, metadatalog.LatestMetadataVersion.Level
	req.Features = append(req.Features, f)
	r, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return 0, err
	}
	resp := r.(*kmsg.BrokerRegistrationResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, fmt.Errorf("registering broker %d: %w", id, err)
	}
	return resp.BrokerEpoch, nil
}

// heartbeat sends one BrokerHeartbeat for broker id at epoch, reporting offset as applied, and fails
// unless the answer is "no error, unfenced".
func heartbeat(ctx context.Context, cl *kgo.Client, id int32, epoch, offset int64) error {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset = id, epoch, offset
	r, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.BrokerHeartbeatResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("heartbeat of broker %d: %w", id, err)
	}
	if resp.IsFenced {
		return fmt.Errorf("heartbeat of broker %d at epoch %d, offset %d: still fenced", id, epoch, offset)
	}
	return nil
}

// unregisterAll removes the registrations of ids from conns connections to the leader at addr.
func unregisterAll(addr string, ids []int32, conns int) error {
	return forEachID(addr, ids, conns, func(ctx context.Context, cl *kgo.Client, id int32) error {
		req := kmsg.NewPtrUnregisterBrokerRequest()
		req.BrokerID = id
		r, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.UnregisterBrokerResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return withMessage(fmt.Errorf("unregistering broker %d: %w", id, err), resp.ErrorMessage)
		}
		return nil
	})
}

// forEachID runs fn once per id, spread over conns connections to addr (connection i takes ids i,
// i+conns, ...), and returns the first error.
func forEachID(addr string, ids []int32, conns int, fn func(ctx context.Context, cl *kgo.Client, id int32) error) error {
	conns = max(1, min(conns, len(ids)))
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := quorumClient(addr)
			if err != nil {
				errs[i] = err
				return
			}
			defer cl.Close()
			for j := i; j < len(ids); j += conns {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := fn(ctx, cl, ids[j])
				cancel()
				if err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
