package main

// `kraftctl topics create | delete | list | describe | alter`, after kafka-topics.sh.
//
// Writes (CreateTopics, DeleteTopics, CreatePartitions) go to a broker, which forwards them, or
// straight to the controllers. list and describe read Metadata, which only brokers serve.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func topicsCommand() *cobra.Command {
	return groupCommand("topics", "Create, delete, list, describe and alter topics (like kafka-topics.sh)",
		topicsCreateCommand(), topicsDeleteCommand(), topicsListCommand(), topicsDescribeCommand(), topicsAlterCommand())
}

// ---------------------------------------------------------------------------
// create

func topicsCreateCommand() *cobra.Command {
	var (
		t                 target
		topic, assignment string
		partitions, rf    int32
		configs           []string
		ifNotExists       bool
	)
	cmd := &cobra.Command{
		Use:   "create --topic T [--partitions N] [--replication-factor R | --replica-assignment 1:2,2:3,...] [--config k=v]... [--if-not-exists] (--bootstrap-server HOST:PORT | --bootstrap-controller HOST:PORT)",
		Short: "Create a topic",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				return usageError("--topic is required")
			}
			if err := validTopicName(topic); err != nil {
				return err
			}
			partsGiven, rfGiven := cmd.Flags().Changed("partitions"), cmd.Flags().Changed("replication-factor")
			if partsGiven && partitions < 1 {
				return usageError("--partitions must be at least 1, got %d", partitions)
			}
			if rfGiven && (rf < 1 || rf > 32767) {
				return usageError("--replication-factor must be between 1 and 32767, got %d", rf)
			}
			var assigned [][]int32
			if assignment != "" {
				if partsGiven || rfGiven {
					return usageError("--replica-assignment sets the partitions and their replicas: give it without --partitions and --replication-factor")
				}
				var err error
				if assigned, err = parseReplicaAssignment(assignment); err != nil {
					return err
				}
			}
			cfgs, err := parseTopicConfigs(configs)
			if err != nil {
				return err
			}
			return t.open(func(ctx context.Context, a *admin) error {
				req := kmsg.NewPtrCreateTopicsRequest()
				req.TimeoutMillis = int32(t.timeout.Milliseconds())
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
				if partsGiven {
					rt.NumPartitions = partitions
				}
				if rfGiven {
					rt.ReplicationFactor = int16(rf)
				}
				for i, replicas := range assigned {
					ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
					ra.Partition, ra.Replicas = int32(i), replicas
					rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
				}
				for _, c := range cfgs {
					rc := kmsg.NewCreateTopicsRequestTopicConfig()
					rc.Name, rc.Value = c[0], kmsg.StringPtr(c[1])
					rt.Configs = append(rt.Configs, rc)
				}
				req.Topics = append(req.Topics, rt)

				r, err := a.send(ctx, req)
				if err != nil {
					return err
				}
				resp := r.(*kmsg.CreateTopicsResponse)
				if len(resp.Topics) != 1 {
					return fmt.Errorf("the answer to CreateTopics holds %d topics, want 1", len(resp.Topics))
				}
				res := resp.Topics[0]
				if err := responseError(res.ErrorCode, res.ErrorMessage); err != nil {
					if ifNotExists && errors.Is(err, kerr.TopicAlreadyExists) {
						return nil
					}
					return fmt.Errorf("topic %s: %w", topic, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Created topic %s.\n", topic)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "", "the topic to create (required)")
	f.Int32Var(&partitions, "partitions", 0, "number of partitions (default: the cluster's)")
	f.Int32Var(&rf, "replication-factor", 0, "replicas per partition (default: the cluster's)")
	f.StringVar(&assignment, "replica-assignment", "", "replicas of each partition in order: broker ids joined by ':', partitions by ',' (1:2,2:3)")
	f.StringArrayVar(&configs, "config", nil, "a topic config key=value (repeatable)")
	f.BoolVar(&ifNotExists, "if-not-exists", false, "succeed quietly if the topic already exists")
	t.addFlags(cmd)
	return cmd
}

// parseReplicaAssignment reads kafka-topics.sh's --replica-assignment: partition i's broker ids are the
// i-th comma-separated group, joined by ':'. Every partition must have the same number of replicas,
// none twice.
func parseReplicaAssignment(s string) ([][]int32, error) {
	var out [][]int32
	for i, group := range strings.Split(s, ",") {
		var replicas []int32
		for _, id := range strings.Split(group, ":") {
			n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 32)
			if err != nil || n < 0 {
				return nil, usageError("--replica-assignment %q: partition %d: %q is not a broker id", s, i, id)
			}
			if slices.Contains(replicas, int32(n)) {
				return nil, usageError("--replica-assignment %q: partition %d lists broker %d twice", s, i, n)
			}
			replicas = append(replicas, int32(n))
		}
		if len(out) > 0 && len(replicas) != len(out[0]) {
			return nil, usageError("--replica-assignment %q: partition %d has %d replicas but partition 0 has %d; every partition needs the same replication factor", s, i, len(replicas), len(out[0]))
		}
		out = append(out, replicas)
	}
	return out, nil
}

// parseTopicConfigs reads repeated --config key=value flags.
func parseTopicConfigs(flags []string) ([][2]string, error) {
	var out [][2]string
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, usageError("--config %q is not key=value", f)
		}
		if err := validConfigKey(k); err != nil {
			return nil, err
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// delete

func topicsDeleteCommand() *cobra.Command {
	var (
		t        target
		topic    string
		ifExists bool
	)
	cmd := &cobra.Command{
		Use:   "delete --topic T[,T2,pattern*] [--if-exists] (--bootstrap-server HOST:PORT | --bootstrap-controller HOST:PORT)",
		Short: "Delete topics: exact names, or glob patterns (which need --bootstrap-server to list the topics)",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				return usageError("--topic is required")
			}
			sel, err := parseTopicSelection(topic)
			if err != nil {
				return err
			}
			return t.open(func(ctx context.Context, a *admin) error {
				names := slices.Clone(sel.names)
				if len(sel.patterns) > 0 {
					if err := a.needBroker("topics delete with a pattern"); err != nil {
						return err
					}
					md, err := a.adm.Metadata(ctx)
					if err != nil {
						return fmt.Errorf("%s: %w", a.addr, err)
					}
					for _, name := range md.Topics.Names() {
						if (topicSelection{patterns: sel.patterns}).matches(name) && !slices.Contains(names, name) {
							names = append(names, name)
						}
					}
				}
				if len(names) == 0 {
					if ifExists {
						return nil
					}
					return fmt.Errorf("no topic matches %q", topic)
				}

				req := kmsg.NewPtrDeleteTopicsRequest()
				req.TimeoutMillis = int32(t.timeout.Milliseconds())
				req.TopicNames = names // v0–v5
				for _, name := range names {
					rt := kmsg.NewDeleteTopicsRequestTopic()
					rt.Topic = kmsg.StringPtr(name)
					req.Topics = append(req.Topics, rt) // v6+
				}
				r, err := a.send(ctx, req)
				if err != nil {
					return err
				}
				var errs []error
				for i, res := range r.(*kmsg.DeleteTopicsResponse).Topics {
					name := ""
					if res.Topic != nil {
						name = *res.Topic
					} else if i < len(names) {
						name = names[i]
					}
					if err := responseError(res.ErrorCode, res.ErrorMessage); err != nil {
						if ifExists && (errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID)) {
							continue
						}
						errs = append(errs, fmt.Errorf("topic %s: %w", name, err))
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted topic %s.\n", name)
				}
				return reportAll(cmd.ErrOrStderr(), errs)
			})
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topics to delete: comma-separated names or glob patterns (*, ?, [...]) (required)")
	cmd.Flags().BoolVar(&ifExists, "if-exists", false, "succeed quietly for topics that do not exist")
	t.addFlags(cmd)
	return cmd
}

// ---------------------------------------------------------------------------
// list

func topicsListCommand() *cobra.Command {
	var (
		t     target
		topic string
	)
	cmd := &cobra.Command{
		Use:   "list [--topic NAMES-OR-PATTERNS] --bootstrap-server HOST:PORT",
		Short: "List topic names, sorted",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sel, err := parseTopicSelection(topic)
			if err != nil {
				return err
			}
			return t.open(func(ctx context.Context, a *admin) error {
				if err := a.needBroker("topics list"); err != nil {
					return err
				}
				md, err := a.adm.Metadata(ctx)
				if err != nil {
					return fmt.Errorf("%s: %w", a.addr, err)
				}
				for _, name := range md.Topics.Names() {
					if sel.matches(name) {
						fmt.Fprintln(cmd.OutOrStdout(), name)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "list only these: comma-separated names or glob patterns (*, ?, [...])")
	t.addFlags(cmd)
	return cmd
}

// ---------------------------------------------------------------------------
// describe

// describeFilter is describe's report flags; with any set, only matching partitions are printed, and
// no topic lines (as kafka-topics.sh).
type describeFilter struct {
	underReplicated, unavailable, underMinISR, atMinISR bool
}

func (f describeFilter) any() bool {
	return f.underReplicated || f.unavailable || f.underMinISR || f.atMinISR
}

func (f describeFilter) selects(p kadm.PartitionDetail, live map[int32]bool, minISR int) bool {
	noLeader := p.Leader < 0 || !live[p.Leader]
	return (f.underReplicated && len(p.ISR) < len(p.Replicas)) ||
		(f.unavailable && noLeader) ||
		(f.underMinISR && (noLeader || len(p.ISR) < minISR)) ||
		(f.atMinISR && len(p.ISR) == minISR)
}

// partitionState is the State column: offline when no live broker leads the partition (Metadata lists
// only unfenced brokers), under-replicated when a replica is out of the ISR, online otherwise.
func partitionState(p kadm.PartitionDetail, live map[int32]bool) string {
	switch {
	case p.Leader < 0 || !live[p.Leader]:
		return "offline"
	case len(p.ISR) < len(p.Replicas):
		return "under-replicated"
	}
	return "online"
}

func topicsDescribeCommand() *cobra.Command {
	var (
		t        target
		topic    string
		ifExists bool
		filter   describeFilter
	)
	cmd := &cobra.Command{
		Use:   "describe [--topic NAMES-OR-PATTERNS] [--if-exists] [--under-replicated-partitions] [--unavailable-partitions] [--under-min-isr-partitions] [--at-min-isr-partitions] --bootstrap-server HOST:PORT",
		Short: "Show topics' partitions: leader, replicas, in-sync replicas and state (online, offline, under-replicated)",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sel, err := parseTopicSelection(topic)
			if err != nil {
				return err
			}
			return t.open(func(ctx context.Context, a *admin) error {
				if err := a.needBroker("topics describe"); err != nil {
					return err
				}

				// Exact names alone are asked for by name, so the broker says why one is missing.
				var md kadm.Metadata
				if len(sel.patterns) == 0 && len(sel.names) > 0 {
					md, err = a.adm.Metadata(ctx, sel.names...)
				} else {
					md, err = a.adm.Metadata(ctx)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", a.addr, err)
				}
				var errs []error
				for _, name := range sel.names {
					d, ok := md.Topics[name]
					switch {
					case !ok:
						err = &serverError{code: kerr.UnknownTopicOrPartition, msg: fmt.Sprintf("Topic '%s' does not exist.", name)}
					case d.Err != nil:
						err = asServerError(d.Err)
					default:
						continue
					}
					if ifExists && errors.Is(err, kerr.UnknownTopicOrPartition) {
						continue
					}
					errs = append(errs, fmt.Errorf("topic %s: %w", name, err))
				}
				var topics []kadm.TopicDetail
				for _, name := range md.Topics.Names() {
					if d := md.Topics[name]; d.Err == nil && sel.matches(name) {
						topics = append(topics, d)
					}
				}
				if len(topics) == 0 && len(sel.names) == 0 && len(sel.patterns) > 0 && !ifExists {
					errs = append(errs, fmt.Errorf("no topic matches %q", topic))
				}

				configs := map[string][]kmsg.DescribeConfigsResponseResourceConfig{}
				if len(topics) > 0 {
					names := make([]string, len(topics))
					for i, d := range topics {
						names[i] = d.Topic
					}
					var cfgErrs map[string]error
					configs, cfgErrs, err = a.describeConfigs(ctx, kmsg.ConfigResourceTypeTopic, names, false)
					if err == nil && len(cfgErrs) > 0 {
						for _, name := range names {
							if e := cfgErrs[name]; e != nil {
								err = fmt.Errorf("topic %s: %w", name, e)
								break
							}
						}
					}
					if err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "kraftctl: topic configs unavailable (Configs shows '?'; min.insync.replicas taken as 1): %v\n", err)
					}
				}
				live := map[int32]bool{}
				for _, b := range md.Brokers {
					live[b.NodeID] = true
				}
				w := cmd.OutOrStdout()
				for _, d := range topics {
					cfgs, haveCfgs := configs[d.Topic]
					if !filter.any() {
						printTopicLine(w, d, cfgs, haveCfgs)
					}
					minISR := minInsyncReplicas(cfgs)
					for _, p := range d.Partitions.Sorted() {
						if !filter.any() || filter.selects(p, live, minISR) {
							printPartitionLine(w, p, live)
						}
					}
				}
				return reportAll(cmd.ErrOrStderr(), errs)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "", "describe only these: comma-separated names or glob patterns (*, ?, [...])")
	f.BoolVar(&ifExists, "if-exists", false, "succeed quietly for named topics that do not exist")
	f.BoolVar(&filter.underReplicated, "under-replicated-partitions", false, "only partitions with a replica out of the ISR")
	f.BoolVar(&filter.unavailable, "unavailable-partitions", false, "only partitions no live broker leads")
	f.BoolVar(&filter.underMinISR, "under-min-isr-partitions", false, "only partitions whose ISR is smaller than min.insync.replicas")
	f.BoolVar(&filter.atMinISR, "at-min-isr-partitions", false, "only partitions whose ISR is exactly min.insync.replicas")
	t.addFlags(cmd)
	return cmd
}

// kafkaUUID prints a topic id as Kafka does: URL-safe base64 without padding.
func kafkaUUID(id kadm.TopicID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

func printTopicLine(w io.Writer, d kadm.TopicDetail, cfgs []kmsg.DescribeConfigsResponseResourceConfig, haveCfgs bool) {
	parts := d.Partitions.Sorted()
	rf := 0
	if len(parts) > 0 {
		rf = len(parts[0].Replicas)
	}
	fmt.Fprintf(w, "Topic: %s", d.Topic)
	if d.ID != (kadm.TopicID{}) {
		fmt.Fprintf(w, "\tTopicId: %s", kafkaUUID(d.ID))
	}
	configText := "?"
	if haveCfgs {
		var set []string
		for _, c := range sortedConfigs(cfgs) {
			if c.Source != kmsg.ConfigSourceDefaultConfig {
				set = append(set, c.Name+"="+configValue(c.Value, c.IsSensitive))
			}
		}
		configText = strings.Join(set, ",")
	}
	fmt.Fprintf(w, "\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n", len(parts), rf, configText)
}

func printPartitionLine(w io.Writer, p kadm.PartitionDetail, live map[int32]bool) {
	leader := "none"
	if p.Leader >= 0 {
		leader = strconv.Itoa(int(p.Leader))
	}
	fmt.Fprintf(w, "\tTopic: %s\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s", p.Topic, p.Partition, leader, joinIDs(p.Replicas), joinIDs(p.ISR))
	if len(p.OfflineReplicas) > 0 {
		fmt.Fprintf(w, "\tOffline: %s", joinIDs(p.OfflineReplicas))
	}
	fmt.Fprintf(w, "\tState: %s\n", partitionState(p, live))
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

// minInsyncReplicas is a topic's min.insync.replicas, or Kafka's default of 1 when unknown.
func minInsyncReplicas(cfgs []kmsg.DescribeConfigsResponseResourceConfig) int {
	for _, c := range cfgs {
		if c.Name == "min.insync.replicas" && c.Value != nil {
			if n, err := strconv.Atoi(*c.Value); err == nil {
				return n
			}
		}
	}
	return 1
}

// ---------------------------------------------------------------------------
// alter

func topicsAlterCommand() *cobra.Command {
	var (
		t          target
		topic      string
		partitions int32
	)
	cmd := &cobra.Command{
		Use:   "alter --topic T[,T2] --partitions N (--bootstrap-server HOST:PORT | --bootstrap-controller HOST:PORT)",
		Short: "Raise topics' partition counts (new partitions are placed like a new topic's)",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				return usageError("--topic is required")
			}
			sel, err := parseTopicSelection(topic)
			if err != nil {
				return err
			}
			if len(sel.patterns) > 0 {
				return usageError("topics alter takes exact topic names, not patterns")
			}
			if !cmd.Flags().Changed("partitions") {
				return usageError("--partitions is required: topics alter only raises partition counts (use `kraftctl configs alter` for configs)")
			}
			if partitions < 1 {
				return usageError("--partitions must be at least 1, got %d", partitions)
			}
			return t.open(func(ctx context.Context, a *admin) error {
				req := kmsg.NewPtrCreatePartitionsRequest()
				req.TimeoutMillis = int32(t.timeout.Milliseconds())
				for _, name := range sel.names {
					rt := kmsg.NewCreatePartitionsRequestTopic()
					rt.Topic, rt.Count = name, partitions
					req.Topics = append(req.Topics, rt)
				}
				r, err := a.send(ctx, req)
				if err != nil {
					return err
				}
				var errs []error
				for _, res := range r.(*kmsg.CreatePartitionsResponse).Topics {
					if err := responseError(res.ErrorCode, res.ErrorMessage); err != nil {
						errs = append(errs, fmt.Errorf("topic %s: %w", res.Topic, err))
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "Altered topic %s: %d partitions.\n", res.Topic, partitions)
				}
				return reportAll(cmd.ErrOrStderr(), errs)
			})
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topics to alter: comma-separated names (required)")
	cmd.Flags().Int32Var(&partitions, "partitions", 0, "the new partition count; it may only grow (required)")
	t.addFlags(cmd)
	return cmd
}

// ---------------------------------------------------------------------------
// configs, shared with `kraftctl configs`

func sortedConfigs(cfgs []kmsg.DescribeConfigsResponseResourceConfig) []kmsg.DescribeConfigsResponseResourceConfig {
	out := slices.Clone(cfgs)
	slices.SortStableFunc(out, func(x, y kmsg.DescribeConfigsResponseResourceConfig) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// configValue prints a value as kafka-configs.sh does: null when absent or sensitive.
func configValue(v *string, sensitive bool) string {
	if v == nil || sensitive {
		return "null"
	}
	return *v
}
