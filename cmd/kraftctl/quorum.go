package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// target is where a networked verb sends its requests.
type target struct {
	bootstrapServer, bootstrapController string
	timeout                              time.Duration
}

func (t *target) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.bootstrapServer, "bootstrap-server", "", "a broker's host:port")
	cmd.Flags().StringVar(&t.bootstrapController, "bootstrap-controller", "", "a controller's host:port")
	cmd.Flags().DurationVar(&t.timeout, "timeout", 15*time.Second, "how long to wait for an answer")
}

func (t *target) addr() (string, error) {
	switch {
	case t.bootstrapServer != "" && t.bootstrapController != "":
		return "", errors.New("give only one of --bootstrap-server and --bootstrap-controller")
	case t.bootstrapController != "":
		return t.bootstrapController, nil
	case t.bootstrapServer != "":
		return t.bootstrapServer, nil
	}
	return "", errors.New("one of --bootstrap-server or --bootstrap-controller is required")
}

// request sends one request straight to the named node: controllers serve no Metadata, so the client
// must not try to discover anything first.
func (t *target) request(req kmsg.Request) (kmsg.Response, error) {
	addr, err := t.addr()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("kraftctl"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return resp, nil
}

func quorumCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "quorum", Short: "Describe the metadata quorum (like kafka-metadata-quorum.sh)"}
	var t target
	var status, replication bool
	describe := &cobra.Command{
		Use:   "describe --status | --replication (--bootstrap-controller HOST:PORT | --bootstrap-server HOST:PORT)",
		Short: "Show the quorum's leader and each replica's progress",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status == replication {
				return errors.New("give exactly one of --status and --replication")
			}
			q, err := describeQuorum(&t)
			if err != nil {
				return err
			}
			if status {
				clusterID := ""
				if dc, err := t.request(kmsg.NewPtrDescribeClusterRequest()); err == nil {
					clusterID = dc.(*kmsg.DescribeClusterResponse).ClusterID
				}
				printQuorumStatus(cmd.OutOrStdout(), clusterID, q, time.Now())
				return nil
			}
			printQuorumReplication(cmd.OutOrStdout(), q, time.Now())
			return nil
		},
	}
	describe.Flags().BoolVar(&status, "status", false, "leader, epoch, high watermark, lag and members")
	describe.Flags().BoolVar(&replication, "replication", false, "each replica's log end offset, lag and fetch times")
	t.addFlags(describe)
	cmd.AddCommand(describe)
	return cmd
}

// quorumView is the part of a DescribeQuorum answer the tool prints.
type quorumView struct {
	resp *kmsg.DescribeQuorumResponse
	part kmsg.DescribeQuorumResponseTopicPartition
}

func describeQuorum(t *target) (quorumView, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	r, err := t.request(req)
	if err != nil {
		return quorumView{}, err
	}
	resp := r.(*kmsg.DescribeQuorumResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return quorumView{}, withMessage(err, resp.ErrorMessage)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return quorumView{}, errors.New("the quorum's answer holds no metadata partition")
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return quorumView{}, withMessage(err, p.ErrorMessage)
	}
	return quorumView{resp: resp, part: p}, nil
}

func withMessage(err error, msg *string) error {
	if msg != nil && *msg != "" {
		return fmt.Errorf("%w: %s", err, *msg)
	}
	return err
}

func (q quorumView) leaderLEO() int64 {
	for _, v := range q.part.CurrentVoters {
		if v.ReplicaID == q.part.LeaderID {
			return v.LogEndOffset
		}
	}
	return q.part.HighWatermark
}

func (q quorumView) endpoints(id int32) []string {
	for _, n := range q.resp.Nodes {
		if n.NodeID == id {
			var out []string
			for _, l := range n.Listeners {
				out = append(out, fmt.Sprintf("%q", fmt.Sprintf("%s://%s:%d", l.Name, l.Host, l.Port)))
			}
			return out
		}
	}
	return nil
}

func printQuorumStatus(w io.Writer, clusterID string, q quorumView, now time.Time) {
	p := q.part
	leo := q.leaderLEO()
	var maxLag, maxLagMs int64
	for _, v := range p.CurrentVoters {
		maxLag = max(maxLag, leo-v.LogEndOffset)
		if v.ReplicaID != p.LeaderID && v.LastCaughtUpTimestamp >= 0 {
			maxLagMs = max(maxLagMs, now.UnixMilli()-v.LastCaughtUpTimestamp)
		}
	}
	members := func(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) string {
		parts := make([]string, 0, len(rs))
		for _, v := range rs {
			parts = append(parts, fmt.Sprintf(`{"id": %d, "endpoints": [%s]}`, v.ReplicaID, strings.Join(q.endpoints(v.ReplicaID), ", ")))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	fmt.Fprintf(w, "ClusterId:              %s\n", clusterID)
	fmt.Fprintf(w, "LeaderId:               %d\n", p.LeaderID)
	fmt.Fprintf(w, "LeaderEpoch:            %d\n", p.LeaderEpoch)
	fmt.Fprintf(w, "HighWatermark:          %d\n", p.HighWatermark)
	fmt.Fprintf(w, "MaxFollowerLag:         %d\n", maxLag)
	fmt.Fprintf(w, "MaxFollowerLagTimeMs:   %d\n", maxLagMs)
	fmt.Fprintf(w, "CurrentVoters:          %s\n", members(p.CurrentVoters))
	fmt.Fprintf(w, "CurrentObservers:       %s\n", members(p.Observers))
}

func printQuorumReplication(w io.Writer, q quorumView, now time.Time) {
	p := q.part
	leo := q.leaderLEO()
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NodeId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus\t")
	row := func(v kmsg.DescribeQuorumResponseTopicPartitionReplicaState, status string) {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\t\n", v.ReplicaID, v.LogEndOffset, leo-v.LogEndOffset, v.LastFetchTimestamp, v.LastCaughtUpTimestamp, status)
	}
	for _, v := range p.CurrentVoters {
		if v.ReplicaID == p.LeaderID {
			row(v, "Leader")
		}
	}
	for _, v := range p.CurrentVoters {
		if v.ReplicaID != p.LeaderID {
			row(v, "Follower")
		}
	}
	for _, v := range p.Observers {
		row(v, "Observer")
	}
	tw.Flush()
}
