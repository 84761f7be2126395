package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/cmd/internal/config"
	"github.com/kraftgo/kraft/controller"
	"github.com/kraftgo/kraft/metadatalog"
)

// node is one running kraftd: its listener, metadata log and controller.
type node struct {
	server     *kafkaserver.Server
	log        *metadatalog.Log
	controller *controller.Controller
	fatal      chan error
	fatalOnce  sync.Once
}

// startNode binds the listener first, so that a port in use is reported as a configuration error before
// anything touches the disk; then it checks the directory, replays the log and joins the quorum.
func startNode(cfg *config.Config, embedded bool, logger *slog.Logger) (*node, error) {
	if cfg.IsBroker() {
		return nil, &config.Error{Key: config.KeyProcessRoles, Reason: "the broker role is not available in this version: use process.roles=controller"}
	}
	cl, ok := cfg.ControllerListener()
	if !ok {
		return nil, &config.Error{Key: config.KeyListeners, Reason: "no controller listener"}
	}
	ln, err := net.Listen("tcp", cl.Addr())
	if err != nil {
		return nil, &config.Error{Key: config.KeyListeners, Reason: fmt.Sprintf("cannot listen on %s (%s://%s): %v; free the port or choose another", cl.Addr(), cl.Name, cl.Addr(), unwrapSyscall(err))}
	}
	dir := cfg.MetadataLogDir
	if embedded {
		if err := formatEmbedded(dir, cfg.NodeID, logger); err != nil {
			ln.Close()
			return nil, err
		}
	}
	mp, err := metadatalog.CheckFormatted(dir, cfg.NodeID)
	if err != nil {
		ln.Close()
		return nil, err
	}
	bootstrap, err := metadatalog.ReadBootstrap(dir)
	if err != nil {
		ln.Close()
		return nil, err
	}
	voters := map[uint64]string{}
	controllerVoters := map[int32]string{}
	for _, v := range cfg.Voters {
		voters[uint64(v.ID)] = v.Addr()
		controllerVoters[v.ID] = v.Addr()
	}
	mlog, err := metadatalog.OpenLog(metadatalog.LogConfig{
		NodeID: uint64(cfg.NodeID), ClusterID: mp.ClusterID, Voters: voters, Dir: dir,
		ElectionTimeout: cfg.ElectionTimeout, Logger: logger,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	n := &node{log: mlog, fatal: make(chan error, 1)}
	n.controller = controller.New(controller.Config{
		NodeID: cfg.NodeID, ClusterID: mp.ClusterID, Voters: controllerVoters, Log: mlog,
		Bootstrap: bootstrap, Logger: logger, OnFatal: n.fail,
	})
	n.server = kafkaserver.Serve(kafkaserver.Options{
		Listener: ln, Handler: n.controller, APIs: n.controller.APIs(), DecorateApiVersions: n.controller.DecorateApiVersions,
		PeerMagic: metadatalog.PeerMagic, PeerHandler: mlog.HandlePeer,
		MaxRequestBytes: cfg.SocketRequestMaxBytes, Logger: logger,
	})
	mlog.Start()
	n.controller.Start()
	go func() {
		<-mlog.Failed()
		if err := mlog.Err(); err != nil {
			n.fail(err)
		}
	}()
	logger.Info("controller started", "cluster", mp.ClusterID, "listener", cl.Name+"://"+cl.Addr(), "dir", dir, "voters", len(voters))
	return n, nil
}

func (n *node) fail(err error) {
	n.fatalOnce.Do(func() { n.fatal <- err })
}

// stop closes the listener first so no new request arrives, then the controller (failing parked
// requests), then the log.
func (n *node) stop() {
	n.server.Close()
	n.controller.Close()
	n.log.Close()
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
