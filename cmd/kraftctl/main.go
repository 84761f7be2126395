// Command kraftctl is the operator's tool, with verbs named after Kafka's own tools:
// `storage` (kafka-storage.sh), `quorum` (kafka-metadata-quorum.sh), `topics` (kafka-topics.sh),
// `configs` (kafka-configs.sh), `log dump` (kafka-dump-log.sh) and `brokers list`.
//
// A verb that fails prints the reason (the server's message when there is one) and exits non-zero.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/kraftgo/kraft/cmd/internal/config"
	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "kraftctl",
		Short:         "Operate a metadata quorum",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(storageCommand(), quorumCommand(), brokersCommand(), topicsCommand(), configsCommand(), logCommand())
	root.AddCommand(shellCommand())
	root.AddCommand(featuresCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kraftctl:", err)
		var cerr *config.Error
		if errors.As(err, &cerr) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
