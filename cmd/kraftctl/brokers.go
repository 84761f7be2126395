package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kraftgo/kraft/api/kafkaext"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func brokersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "brokers", Short: "Inspect registered brokers"}
	var t target
	list := &cobra.Command{
		Use:   "list (--bootstrap-server HOST:PORT | --bootstrap-controller HOST:PORT)",
		Short: "List every registered broker: endpoint, rack, epoch, state, metadata offset and lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.IncludeFencedBrokers = true
			r, err := t.request(req)
			if err != nil {
				return err
			}
			dc := r.(*kmsg.DescribeClusterResponse)
			if err := kerr.ErrorForCode(dc.ErrorCode); err != nil {
				return withMessage(err, dc.ErrorMessage)
			}
			// Offsets come from the quorum; without it the list is still worth printing.
			q, qerr := describeQuorum(&t)
			printBrokers(cmd.OutOrStdout(), dc.Brokers, q, qerr == nil)
			if qerr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "kraftctl: metadata offsets unavailable: %v\n", qerr)
			}
			return nil
		},
	}
	t.addFlags(list)
	cmd.AddCommand(list)
	return cmd
}

// brokerOffset finds the metadata offset a broker last reported: observers are brokers; a combined
// node's broker shares its voter's log.
func (q quorumView) brokerOffset(id int32) (int64, bool) {
	for _, set := range [][]kmsg.DescribeQuorumResponseTopicPartitionReplicaState{q.part.Observers, q.part.CurrentVoters} {
		for _, r := range set {
			if r.ReplicaID == id {
				return r.LogEndOffset, true
			}
		}
	}
	return 0, false
}

func printBrokers(w io.Writer, brokers []kmsg.DescribeClusterResponseBroker, q quorumView, haveQuorum bool) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENDPOINT\tRACK\tEPOCH\tSTATE\tMETADATA-OFFSET\tLAG\t")
	for _, b := range brokers {
		rack := "-"
		if b.Rack != nil && *b.Rack != "" {
			rack = *b.Rack
		}
		epoch, inShutdown, known := kafkaext.BrokerState(&b)
		epochText, state := "-", "unfenced"
		if known {
			epochText = fmt.Sprint(epoch)
		}
		switch {
		case inShutdown:
			state = "controlled-shutdown"
		case b.IsFenced:
			state = "fenced"
		}
		offset, lag := "-", "-"
		if haveQuorum {
			if off, ok := q.brokerOffset(b.NodeID); ok {
				offset, lag = fmt.Sprint(off), fmt.Sprint(max(q.part.HighWatermark-off, 0))
			}
		}
		fmt.Fprintf(tw, "%d\t%s:%d\t%s\t%s\t%s\t%s\t%s\t\n", b.NodeID, b.Host, b.Port, rack, epochText, state, offset, lag)
	}
	tw.Flush()
}
