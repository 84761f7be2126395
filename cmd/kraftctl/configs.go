package main

// `kraftctl configs describe | alter`, after kafka-configs.sh, for topics and brokers (one broker, or
// the cluster-wide broker default). Reads are DescribeConfigs, writes IncrementalAlterConfigs with SET
// and DELETE; both go to a broker (which answers reads from its image and forwards writes) or straight
// to the controllers.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func configsCommand() *cobra.Command {
	return groupCommand("configs", "Describe and alter topic and broker configs (like kafka-configs.sh)",
		configsDescribeCommand(), configsAlterCommand())
}

// entityFlags are kafka-configs.sh's ways of naming what to describe or alter: --entity-type with
// --entity-name or --entity-default, or the shortcuts --topic, --broker and --broker-defaults.
type entityFlags struct {
	entityType, entityName string
	entityDefault          bool
	topic, broker          string
	brokerDefaults         bool
}

func (e *entityFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&e.entityType, "entity-type", "", "topics or brokers")
	f.StringVar(&e.entityName, "entity-name", "", "a topic's name or a broker's id")
	f.BoolVar(&e.entityDefault, "entity-default", false, "the cluster-wide default (brokers only)")
	f.StringVar(&e.topic, "topic", "", "shortcut for --entity-type topics --entity-name T")
	f.StringVar(&e.broker, "broker", "", "shortcut for --entity-type brokers --entity-name N")
	f.BoolVar(&e.brokerDefaults, "broker-defaults", false, "shortcut for --entity-type brokers --entity-default")
}

// entity is one config resource, or (named false) every resource of a type.
type entity struct {
	typ   kmsg.ConfigResourceType
	kind  string // "topics" or "brokers", as on the command line
	name  string // "" for the broker default
	named bool   // a name or the default was given
}

func (e entity) isDefault() bool { return e.named && e.name == "" }

// singular is the entity's type in messages: "topic" or "broker".
func (e entity) singular() string { return strings.TrimSuffix(e.kind, "s") }

func (e entity) String() string {
	if e.isDefault() {
		return "the default config for " + e.kind
	}
	return e.singular() + " " + e.name
}

// dynamicSource is the config source of values set on this entity itself: what a describe without
// --all shows and what DELETE can remove.
func (e entity) dynamicSource() kmsg.ConfigSource {
	switch {
	case e.typ == kmsg.ConfigResourceTypeTopic:
		return kmsg.ConfigSourceDynamicTopicConfig
	case e.name == "":
		return kmsg.ConfigSourceDynamicDefaultBrokerConfig
	}
	return kmsg.ConfigSourceDynamicBrokerConfig
}

func (e *entityFlags) resolve(cmd *cobra.Command) (entity, error) {
	shortcuts := 0
	for _, name := range []string{"topic", "broker", "broker-defaults"} {
		if cmd.Flags().Changed(name) {
			shortcuts++
		}
	}
	long := cmd.Flags().Changed("entity-type") || cmd.Flags().Changed("entity-name") || e.entityDefault
	switch {
	case shortcuts > 1:
		return entity{}, usageError("give only one of --topic, --broker and --broker-defaults")
	case shortcuts == 1 && long:
		return entity{}, usageError("--entity-type, --entity-name and --entity-default cannot be used with --topic, --broker or --broker-defaults")
	case cmd.Flags().Changed("topic"):
		e.entityType, e.entityName = "topics", e.topic
	case cmd.Flags().Changed("broker"):
		e.entityType, e.entityName = "brokers", e.broker
	case e.brokerDefaults:
		e.entityType, e.entityDefault = "brokers", true
	}
	var ent entity
	switch e.entityType {
	case "topics":
		ent = entity{typ: kmsg.ConfigResourceTypeTopic, kind: "topics"}
	case "brokers":
		ent = entity{typ: kmsg.ConfigResourceTypeBroker, kind: "brokers"}
	case "":
		return entity{}, usageError("--entity-type is required: topics or brokers")
	case "topic", "broker":
		return entity{}, usageError("--entity-type %s: the entity types are plural, as in kafka-configs.sh: use %ss", e.entityType, e.entityType)
	case "users", "clients", "ips", "broker-loggers", "client-metrics", "groups":
		return entity{}, usageError("--entity-type %s is not supported by kraftctl: only topics and brokers have configs here", e.entityType)
	default:
		return entity{}, usageError("--entity-type %q is not an entity type: use topics or brokers", e.entityType)
	}
	nameGiven := cmd.Flags().Changed("entity-name") || cmd.Flags().Changed("topic") || cmd.Flags().Changed("broker")
	switch {
	case nameGiven && e.entityDefault:
		return entity{}, usageError("give only one of --entity-name and --entity-default")
	case e.entityDefault && ent.typ == kmsg.ConfigResourceTypeTopic:
		return entity{}, usageError("--entity-default applies to brokers only; topics take their defaults from the brokers' config")
	case e.entityDefault:
		ent.named = true
	case nameGiven:
		ent.name, ent.named = e.entityName, true
		if ent.typ == kmsg.ConfigResourceTypeTopic {
			if err := validTopicName(ent.name); err != nil {
				return entity{}, err
			}
		} else if id, err := strconv.ParseInt(ent.name, 10, 32); err != nil || id < 0 {
			return entity{}, usageError("the entity name for brokers must be a broker id (an integer), got %q", ent.name)
		}
	}
	return ent, nil
}

// ---------------------------------------------------------------------------
// describe

func configsDescribeCommand() *cobra.Command {
	var (
		t   target
		ef  entityFlags
		all bool
	)
	cmd := &cobra.Command{
		Use:   "describe --entity-type topics|brokers [--entity-name N | --entity-default] [--all] (--bootstrap-server HOST:PORT | --bootstrap-controller HOST:PORT)",
		Short: "Show the configs set on a topic or broker (or, with --all, every config and where its value comes from)",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ent, err := ef.resolve(cmd)
			if err != nil {
				return err
			}
			return t.open(func(ctx context.Context, a *admin) error {
				entities := []entity{ent}
				if !ent.named {
					if entities, err = a.allEntities(ctx, ent); err != nil {
						return err
					}
				}
				names := make([]string, len(entities))
				for i, e := range entities {
					names[i] = e.name
				}
				if len(names) == 0 {
					return nil
				}
				configs, cfgErrs, err := a.describeConfigs(ctx, ent.typ, names, true)
				if err != nil {
					return err
				}
				var errs []error
				for _, e := range entities {
					if err := cfgErrs[e.name]; err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", e, err))
						continue
					}
					printEntityConfigs(cmd.OutOrStdout(), e, configs[e.name], all)
				}
				return reportAll(cmd.ErrOrStderr(), errs)
			})
		},
	}
	ef.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "every config, not only those set on the entity")
	t.addFlags(cmd)
	return cmd
}

// allEntities lists every entity of a type, as kafka-configs.sh does without --entity-name: every
// topic (from Metadata, so through a broker only), or every broker and then the brokers' default.
func (a *admin) allEntities(ctx context.Context, ent entity) ([]entity, error) {
	var out []entity
	if ent.typ == kmsg.ConfigResourceTypeTopic {
		if err := a.needBroker("configs describe of every topic (no --entity-name)"); err != nil {
			return nil, err
		}
		md, err := a.adm.Metadata(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.addr, err)
		}
		for _, name := range md.Topics.Names() {
			out = append(out, entity{typ: ent.typ, kind: ent.kind, name: name, named: true})
		}
		return out, nil
	}
	// Each node describes only its own broker configs, so the nodes are those this verb reaches: the
	// live brokers, or the controllers (as kafka-configs.sh --bootstrap-controller does).
	var ids []string
	if a.toCtl {
		ctls, err := a.controllers(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range ctls {
			ids = append(ids, c.id)
		}
	} else {
		var err error
		if ids, err = a.liveBrokers(ctx); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		out = append(out, entity{typ: ent.typ, kind: ent.kind, name: id, named: true})
	}
	return append(out, entity{typ: ent.typ, kind: ent.kind, named: true}), nil
}

// printEntityConfigs prints one entity's configs as kafka-configs.sh --describe does, sorted by name.
func printEntityConfigs(w io.Writer, e entity, cfgs []kmsg.DescribeConfigsResponseResourceConfig, all bool) {
	switch {
	case e.isDefault():
		fmt.Fprintf(w, "Default configs for %s in the cluster are:\n", e.kind)
	case all:
		fmt.Fprintf(w, "All configs for %s are:\n", e)
	default:
		fmt.Fprintf(w, "Dynamic configs for %s are:\n", e)
	}
	for _, c := range sortedConfigs(cfgs) {
		if !all && c.Source != e.dynamicSource() {
			continue
		}
		syns := make([]string, len(c.ConfigSynonyms))
		for i, s := range c.ConfigSynonyms {
			syns[i] = fmt.Sprintf("%s:%s=%s", s.Source, s.Name, configValue(s.Value, c.IsSensitive))
		}
		fmt.Fprintf(w, "  %s=%s sensitive=%t synonyms={%s}\n", c.Name, configValue(c.Value, c.IsSensitive), c.IsSensitive, strings.Join(syns, ", "))
	}
}

// ---------------------------------------------------------------------------
// alter

func configsAlterCommand() *cobra.Command {
	var (
		t          target
		ef         entityFlags
		addFlags   []string
		deleteFlag []string
	)
	cmd := &cobra.Command{
		Use:   "alter --entity-type topics|brokers (--entity-name N | --entity-default) [--add-config k=v,k2=[a,b]] [--delete-config k,k2] (--bootstrap-server HOST:PORT | --bootstrap-controller HOST:PORT)",
		Short: "Set or remove configs of a topic, a broker, or the brokers' default",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ent, err := ef.resolve(cmd)
			if err != nil {
				return err
			}
			if !ent.named {
				if ent.typ == kmsg.ConfigResourceTypeTopic {
					return usageError("an entity name is required to alter topics: --entity-name T")
				}
				return usageError("an entity name or --entity-default is required to alter brokers")
			}
			var sets [][2]string
			for _, f := range addFlags {
				pairs, err := parseConfigPairs(f)
				if err != nil {
					return err
				}
				sets = append(sets, pairs...)
			}
			var deletes []string
			for _, f := range deleteFlag {
				for _, k := range strings.Split(f, ",") {
					k = strings.TrimSpace(k)
					if err := validConfigKey(k); err != nil {
						return err
					}
					deletes = append(deletes, k)
				}
			}
			if len(sets) == 0 && len(deletes) == 0 {
				return usageError("give --add-config or --delete-config (or both)")
			}
			seen := map[string]bool{}
			for _, k := range deletes {
				seen[k] = true
			}
			for _, kv := range sets {
				if seen[kv[0]] {
					return usageError("config %s is given more than once (to add or to delete)", kv[0])
				}
				seen[kv[0]] = true
			}

			return t.open(func(ctx context.Context, a *admin) error {
				// Through a broker, kgo sends a broker's configs to that broker: it must be live.
				if !a.toCtl && ent.typ == kmsg.ConfigResourceTypeBroker && ent.name != "" {
					if _, err := a.brokerConfigNode(ctx, ent.name); err != nil {
						return fmt.Errorf("%s: %w", ent, err)
					}
				}
				// As kafka-configs.sh: deleting a config that is not set is a mistake (usually a typo) worth
				// stopping for. The same read tells an unknown topic apart early. A broker no reachable
				// node describes (a controller describes only its own) goes without the check.
				if len(deletes) > 0 {
					configs, cfgErrs, err := a.describeConfigs(ctx, ent.typ, []string{ent.name}, false)
					if err != nil {
						return err
					}
					var ub *unreachableBroker
					if err := cfgErrs[ent.name]; err != nil && !errors.As(err, &ub) {
						return fmt.Errorf("%s: %w", ent, err)
					}
					var notSet []string
					for _, k := range deletes {
						if cfgErrs[ent.name] == nil && !slices.ContainsFunc(configs[ent.name], func(c kmsg.DescribeConfigsResponseResourceConfig) bool {
							return c.Name == k && c.Source == ent.dynamicSource()
						}) {
							notSet = append(notSet, k)
						}
					}
					if len(notSet) > 0 {
						return fmt.Errorf("%s: %w", ent, &serverError{code: kerr.InvalidConfig, msg: fmt.Sprintf("Invalid config(s): %s: not set on %s, so there is nothing to delete", strings.Join(notSet, ","), ent)})
					}
				}

				req := kmsg.NewPtrIncrementalAlterConfigsRequest()
				rr := kmsg.NewIncrementalAlterConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = ent.typ, ent.name
				for _, k := range deletes {
					c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
					c.Name, c.Op = k, kmsg.IncrementalAlterConfigOpDelete
					rr.Configs = append(rr.Configs, c)
				}
				for _, kv := range sets {
					c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
					c.Name, c.Op, c.Value = kv[0], kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(kv[1])
					rr.Configs = append(rr.Configs, c)
				}
				req.Resources = append(req.Resources, rr)
				r, err := a.send(ctx, req)
				if err != nil {
					return err
				}
				resp := r.(*kmsg.IncrementalAlterConfigsResponse)
				if len(resp.Resources) != 1 {
					return errors.New("the answer to IncrementalAlterConfigs holds no result for " + ent.String())
				}
				if err := responseError(resp.Resources[0].ErrorCode, resp.Resources[0].ErrorMessage); err != nil {
					return fmt.Errorf("%s: %w", ent, err)
				}
				if ent.isDefault() {
					fmt.Fprintf(cmd.OutOrStdout(), "Completed updating default config for %s in the cluster.\n", ent.kind)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "Completed updating config for %s.\n", ent)
				}
				return nil
			})
		},
	}
	ef.add(cmd)
	cmd.Flags().StringArrayVar(&addFlags, "add-config", nil, "configs to set: k1=v1,k2=[v1,v2] (brackets group a value holding commas; repeatable)")
	cmd.Flags().StringArrayVar(&deleteFlag, "delete-config", nil, "configs to remove: k1,k2 (repeatable)")
	t.addFlags(cmd)
	return cmd
}

// ---------------------------------------------------------------------------
// DescribeConfigs, shared with `topics describe`

// unreachableBroker says why no node this verb can reach describes a broker's own configs: a node
// answers DescribeConfigs for a BROKER resource only about itself, as Kafka's nodes do.
type unreachableBroker struct{ why string }

func (e *unreachableBroker) Error() string { return e.why }

// describeConfigs asks for every config of the named resources, with synonyms when asked. It returns
// each resource's configs by name, and the errors of those that failed.
func (a *admin) describeConfigs(ctx context.Context, typ kmsg.ConfigResourceType, names []string, synonyms bool) (map[string][]kmsg.DescribeConfigsResponseResourceConfig, map[string]error, error) {
	out, errs := map[string][]kmsg.DescribeConfigsResponseResourceConfig{}, map[string]error{}
	newReq := func() *kmsg.DescribeConfigsRequest {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.IncludeSynonyms = synonyms
		return req
	}
	addResource := func(req *kmsg.DescribeConfigsRequest, name string) {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = typ, name
		req.Resources = append(req.Resources, rr)
	}
	collect := func(r kmsg.Response) {
		for _, res := range r.(*kmsg.DescribeConfigsResponse).Resources {
			if err := responseError(res.ErrorCode, res.ErrorMessage); err != nil {
				errs[res.ResourceName] = err
				continue
			}
			out[res.ResourceName] = res.Configs
		}
	}

	req := newReq()
	direct := map[string]string{} // a controller's own broker configs: asked of that controller
	for _, name := range names {
		if typ == kmsg.ConfigResourceTypeBroker && name != "" {
			addr, err := a.brokerConfigNode(ctx, name)
			switch {
			case err != nil:
				errs[name] = err
			case addr != "":
				direct[name] = addr
			default:
				addResource(req, name)
			}
			continue
		}
		addResource(req, name)
	}
	if len(req.Resources) > 0 {
		r, err := a.send(ctx, req)
		if err != nil {
			return nil, nil, err
		}
		collect(r)
	}
	for name, addr := range direct {
		one := newReq()
		addResource(one, name)
		r, err := a.requestAt(ctx, addr, one)
		if err != nil {
			errs[name] = a.explain(addr, one, err)
			continue
		}
		collect(r)
	}
	for _, name := range names {
		if _, ok := out[name]; !ok && errs[name] == nil {
			errs[name] = fmt.Errorf("the answer to DescribeConfigs leaves out %q", name)
		}
	}
	return out, errs, nil
}

// brokerConfigNode says where broker id's own configs can be described: "" for the usual route (through
// a broker, kgo sends the request to broker id itself), or a controller's address; or why no node
// this verb can reach will describe them.
func (a *admin) brokerConfigNode(ctx context.Context, id string) (string, error) {
	if !a.toCtl {
		live, err := a.liveBrokers(ctx)
		if err != nil {
			return "", err
		}
		if !slices.Contains(live, id) {
			return "", &unreachableBroker{fmt.Sprintf("not a live broker (the live brokers are %s), and each broker describes only its own configs", strings.Join(live, ", "))}
		}
		return "", nil
	}
	ctls, err := a.controllers(ctx)
	if err != nil {
		return "", err
	}
	for _, c := range ctls {
		if c.id == id {
			return c.addr, nil
		}
	}
	return "", &unreachableBroker{fmt.Sprintf("not a controller, and a controller describes only its own broker configs: use --bootstrap-server to describe broker %s", id)}
}

// liveBrokers lists the ids of the brokers a broker's Metadata shows (the unfenced ones), sorted.
func (a *admin) liveBrokers(ctx context.Context) ([]string, error) {
	md, err := a.adm.BrokerMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.addr, err)
	}
	ids := make([]int32, 0, len(md.Brokers))
	for _, b := range md.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.Itoa(int(id))
	}
	return out, nil
}

// controllerNode is one controller, as DescribeCluster with EndpointType 2 lists it.
type controllerNode struct{ id, addr string }

// controllers lists the controllers the bootstrap controller knows, by id.
func (a *admin) controllers(ctx context.Context) ([]controllerNode, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.EndpointType = 2
	r, err := a.requestAt(ctx, a.addr, req)
	if err != nil {
		return nil, a.explain(a.addr, req, err)
	}
	dc := r.(*kmsg.DescribeClusterResponse)
	if err := responseError(dc.ErrorCode, dc.ErrorMessage); err != nil {
		return nil, err
	}
	if dc.EndpointType != 2 {
		return nil, fmt.Errorf("%s does not list the controllers (DescribeCluster v1+ with EndpointType 2)", a.addr)
	}
	brokers := slices.Clone(dc.Brokers)
	slices.SortFunc(brokers, func(x, y kmsg.DescribeClusterResponseBroker) int { return int(x.NodeID) - int(y.NodeID) })
	out := make([]controllerNode, len(brokers))
	for i, b := range brokers {
		out[i] = controllerNode{id: strconv.Itoa(int(b.NodeID)), addr: fmt.Sprintf("%s:%d", b.Host, b.Port)}
	}
	return out, nil
}
