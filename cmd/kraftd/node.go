package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/broker"
	"github.com/kraftgo/kraft/cmd/internal/config"
	"github.com/kraftgo/kraft/controller"
	"github.com/kraftgo/kraft/metadatalog"
)

// controlledShutdownTimeout bounds how long SIGTERM waits for the controller to release a broker.
const controlledShutdownTimeout = 30 * time.Second

// node is one running kraftd: its listeners and whichever of the two roles process.roles names.
type node struct {
	logger *slog.Logger

	controllerServer *kafkaserver.Server
	log              *metadatalog.Log
	controller       *controller.Controller

	brokerServers []*kafkaserver.Server
	broker        *broker.Broker

	fatal     chan error
	fatalOnce sync.Once
	// supportedMax is metadata.version.supported.max, resolved.
	supportedMax int16
}

// startNode binds every listener first, so that a port in use is reported as a configuration error
// before anything touches the disk; then it checks the directory and starts the roles: the controller
// first, so that a combined node's broker finds it.
func startNode(cfg *config.Config, embedded bool, logger *slog.Logger) (*node, error) {
	listeners, err := bindListeners(cfg)
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}
	dir := cfg.MetadataLogDir
	if embedded {
		if err := formatEmbedded(dir, cfg.NodeID, logger); err != nil {
			closeAll()
			return nil, err
		}
	}
	mp, err := metadatalog.CheckFormatted(dir, cfg.NodeID)
	if err != nil {
		closeAll()
		return nil, err
	}
	supportedMax, err := supportedMaxMetadataVersion(cfg)
	if err != nil {
		closeAll()
		return nil, err
	}
	n := &node{logger: logger, fatal: make(chan error, 1), supportedMax: supportedMax}
	voters := map[int32]string{}
	for _, v := range cfg.Voters {
		voters[v.ID] = v.Addr()
	}
	if cfg.IsController() {
		cl, _ := cfg.ControllerListener()
		if err := n.startController(cfg, mp, voters, listeners[cl.Name]); err != nil {
			closeAll()
			return nil, err
		}
	}
	if cfg.IsBroker() {
		n.startBroker(cfg, mp, voters, listeners)
	}
	logger.Info("node started", "cluster", mp.ClusterID, "roles", cfg.Roles, "dir", dir)
	return n, nil
}

// bindListeners opens every listener of this node, keyed by listener name.
func bindListeners(cfg *config.Config) (map[string]net.Listener, error) {
	out := map[string]net.Listener{}
	for _, l := range cfg.Listeners {
		if !cfg.IsBroker() && !isControllerListener(cfg, l.Name) {
			continue
		}
		ln, err := net.Listen("tcp", l.Addr())
		if err != nil {
			for _, open := range out {
				open.Close()
			}
			return nil, &config.Error{Key: config.KeyListeners, Reason: fmt.Sprintf("cannot listen on %s (%s://%s): %v; free the port or choose another", l.Addr(), l.Name, l.Addr(), unwrapSyscall(err))}
		}
		out[l.Name] = ln
	}
	return out, nil
}

func isControllerListener(cfg *config.Config, name string) bool {
	cl, ok := cfg.ControllerListener()
	return ok && cl.Name == name
}

func (n *node) startController(cfg *config.Config, mp metadatalog.MetaProperties, voters map[int32]string, ln net.Listener) error {
	bootstrap, err := metadatalog.ReadBootstrap(cfg.MetadataLogDir)
	if err != nil {
		return err
	}
	raftVoters := map[uint64]string{}
	for id, addr := range voters {
		raftVoters[uint64(id)] = addr
	}
	metadatalog.SetSegmentBytes(cfg.SegmentBytes)
	mlog, err := metadatalog.OpenLog(metadatalog.LogConfig{
		NodeID: uint64(cfg.NodeID), ClusterID: mp.ClusterID, Voters: raftVoters, Dir: cfg.MetadataLogDir,
		ElectionTimeout: cfg.ElectionTimeout, CatchUpEntries: uint64(cfg.SnapshotCatchUpEntries), Logger: n.logger,
	})
	if err != nil {
		return err
	}
	n.log = mlog
	n.controller = controller.New(controller.Config{
		NodeID: cfg.NodeID, ClusterID: mp.ClusterID, Voters: voters, Log: mlog,
		Bootstrap: bootstrap, SessionTimeout: cfg.BrokerSessionTimeout, MaxPartitionsPerRequest: int(cfg.MaxPartitionsPerRequest),
		SnapshotPolicy: snapshotPolicy(cfg), SupportedMaxMetadataVersion: n.supportedMax, Logger: n.logger, OnFatal: n.fail,
	})
	n.controllerServer = kafkaserver.Serve(kafkaserver.Options{
		Listener: ln, Handler: n.controller, APIs: n.controller.APIs(), DecorateApiVersions: n.controller.DecorateApiVersions,
		PeerMagic: metadatalog.PeerMagic, PeerHandler: mlog.HandlePeer,
		MaxRequestBytes: cfg.SocketRequestMaxBytes, Logger: n.logger,
	})
	mlog.Start()
	n.controller.Start()
	go func() {
		<-mlog.Failed()
		if err := mlog.Err(); err != nil {
			n.fail(err)
		}
	}()
	return nil
}

func (n *node) startBroker(cfg *config.Config, mp metadatalog.MetaProperties, voters map[int32]string, listeners map[string]net.Listener) {
	var advertised []broker.Listener
	for _, l := range cfg.AdvertisedListeners {
		if isControllerListener(cfg, l.Name) {
			continue
		}
		advertised = append(advertised, broker.Listener{Name: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: cfg.SecurityProtocolMap[l.Name]})
	}
	n.broker = broker.New(broker.Config{
		NodeID: cfg.NodeID, ClusterID: mp.ClusterID, Controllers: voters, Listeners: advertised, Rack: cfg.Rack,
		HeartbeatInterval: cfg.BrokerHeartbeatInterval, SessionTimeout: cfg.BrokerSessionTimeout,
		Dir: cfg.MetadataLogDir, SnapshotPolicy: snapshotPolicy(cfg), Logger: n.logger,
		SupportedMetadataVersion: [2]int16{metadatalog.MinMetadataVersion.Level, n.supportedMax},
	})
	for _, l := range cfg.BrokerListeners() {
		n.brokerServers = append(n.brokerServers, kafkaserver.Serve(kafkaserver.Options{
			Listener: listeners[l.Name], Handler: n.broker.HandlerFor(l.Name), APIs: n.broker.APIs(),
			DecorateApiVersions: n.broker.DecorateApiVersions, MaxRequestBytes: cfg.SocketRequestMaxBytes, Logger: n.logger,
		}))
	}
	n.broker.Start()
	go func() {
		if err, ok := <-n.broker.Fatal(); ok && err != nil {
			n.fail(err)
		}
	}()
}

// supportedMaxMetadataVersion resolves metadata.version.supported.max against the version table.
func supportedMaxMetadataVersion(cfg *config.Config) (int16, error) {
	if cfg.MetadataVersionSupportedMax == "" {
		return metadatalog.LatestMetadataVersion.Level, nil
	}
	v, err := metadatalog.LookupMetadataVersion(cfg.MetadataVersionSupportedMax)
	if err != nil {
		return 0, &config.Error{Key: config.KeyMetadataVersionSupportedMax, Reason: err.Error()}
	}
	return v.Level, nil
}

// snapshotPolicy is the snapshot and retention settings every role of the node shares.
func snapshotPolicy(cfg *config.Config) metadatalog.SnapshotPolicy {
	return metadatalog.SnapshotPolicy{
		MaxBytes: cfg.SnapshotMaxBytes, MaxInterval: cfg.SnapshotInterval,
		RetentionBytes: cfg.RetentionBytes, RetentionTime: cfg.RetentionTime,
	}
}

func (n *node) fail(err error) {
	n.fatalOnce.Do(func() { n.fatal <- err })
}

// stop shuts down in the order that loses nothing: a broker first completes its controlled shutdown
// (while a combined node's controller still runs), then listeners close so no new request arrives,
// then the controller fails what it has parked, then the log closes.
func (n *node) stop(graceful bool) {
	if n.broker != nil {
		if graceful {
			ctx, cancel := context.WithTimeout(context.Background(), controlledShutdownTimeout)
			if err := n.broker.Shutdown(ctx); err != nil {
				n.logger.Warn("controlled shutdown did not complete; stopping anyway", "err", err)
			}
			cancel()
		}
		n.broker.Close()
		for _, s := range n.brokerServers {
			s.Close()
		}
	}
	if n.controller != nil {
		n.controllerServer.Close()
		n.controller.Close()
		n.log.Close()
	}
}

// formatEmbedded formats the embedded default's directory on its first start, with a fresh cluster id.
func formatEmbedded(dir string, nodeID int32, logger *slog.Logger) error {
	if _, err := metadatalog.ReadMetaProperties(dir); !errors.Is(err, metadatalog.ErrNotFormatted) {
		return nil
	}
	id := metadatalog.RandomUUID()
	if err := metadatalog.Format(dir, metadatalog.MetaProperties{ClusterID: id, NodeID: nodeID}, metadatalog.BootstrapRecords(metadatalog.LatestMetadataVersion), false); err != nil {
		return err
	}
	logger.Info("formatted the embedded default's metadata directory", "dir", dir, "cluster", id, "metadata.version", metadatalog.LatestMetadataVersion.Name)
	return nil
}

func unwrapSyscall(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
