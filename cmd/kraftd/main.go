// Command kraftd runs one node of a metadata quorum: the roles named by process.roles, from a config
// file that may describe the whole cluster (keys under node.<id>. apply to --node-id <id> only).
//
// With no flags at all it starts the embedded default: a single-node quorum on 127.0.0.1:9093 with its
// data in ./kraft-data, formatted on first start.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kraftgo/kraft/cmd/internal/config"
	"github.com/spf13/cobra"
)

// Exit codes: 2 is a configuration the operator must fix; 1 is any other failure to start or run.
const (
	exitConfig = 2
	exitFailed = 1
)

func main() {
	var (
		configFile string
		nodeID     int32
		overrides  []string
	)
	cmd := &cobra.Command{
		Use:           "kraftd [--config FILE] [--node-id N] [--override key=value]...",
		Short:         "Run a node of the metadata quorum",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			embedded := cmd.Flags().NFlag() == 0
			var cfg *config.Config
			var err error
			if embedded {
				cfg, err = config.FromProperties(config.EmbeddedDefault(), -1, nil)
			} else if configFile == "" {
				return &config.Error{Reason: "--config FILE is required when any flag is given (run kraftd with no flags for the embedded single-node default)"}
			} else {
				cfg, err = config.Load(configFile, nodeID, overrides)
			}
			if err != nil {
				return err
			}
			return run(cfg, embedded)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &flagError{err} })
	cmd.Flags().StringVar(&configFile, "config", "", "node or whole-cluster configuration file (.properties or .yaml)")
	cmd.Flags().Int32Var(&nodeID, "node-id", -1, "which node of a whole-cluster file this process is")
	cmd.Flags().StringArrayVar(&overrides, "override", nil, "key=value that wins over the file (repeatable)")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kraftd:", err)
		var cerr *config.Error
		if errors.As(err, &cerr) || isFlagError(err) {
			os.Exit(exitConfig)
		}
		os.Exit(exitFailed)
	}
}

// isFlagError tells cobra's own parse errors (unknown flag, bad value) from runtime failures.
func isFlagError(err error) bool {
	var ferr *flagError
	return errors.As(err, &ferr)
}

type flagError struct{ error }

func run(cfg *config.Config, embedded bool) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", cfg.NodeID)
	slog.SetDefault(logger)
	n, err := startNode(cfg, embedded, logger)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sigs:
		logger.Info("shutting down", "signal", s.String())
		n.stop(true)
		logger.Info("stopped cleanly")
		return nil
	case err := <-n.fatal:
		n.stop(false)
		return fmt.Errorf("node %d stopped: %w", cfg.NodeID, err)
	}
}
