package main

// The admin connection shared by `topics` and `configs`: where requests go, how a standby
// controller's NOT_CONTROLLER is followed, and how failures are worded.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kraftgo/kraft/cmd/internal/config"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// usageError is a bad flag or flag combination. main exits with code 2 for a *config.Error, the code
// kraftctl uses for everything the operator must fix on the command line before retrying.
func usageError(format string, args ...any) error {
	return &config.Error{Reason: fmt.Sprintf(format, args...)}
}

// usageArgs makes cobra's own complaints (stray arguments, unknown flags) usage errors.
func usageArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("%s takes no arguments, got %q (see --help)", verbName(cmd), strings.Join(args, " "))
	}
	return nil
}

// verbName is a command's path without the program's name: "topics describe".
func verbName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// groupCommand is a command that only holds verbs: alone it prints its help; with an unknown verb it
// is a usage error (cobra would print the help and exit 0).
func groupCommand(use, short string, verbs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError("unknown command %q for %s (see %s --help)", args[0], verbName(cmd), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	cmd.AddCommand(verbs...)
	return cmd
}

func flagUsageError(_ *cobra.Command, err error) error { return usageError("%v", err) }

// serverError is an error code a server answered, with its message: printed as "CODE: message", the
// code's standard description standing in when the server sent no message.
type serverError struct {
	code *kerr.Error
	msg  string
}

func (e *serverError) Error() string {
	msg := e.msg
	if msg == "" {
		msg = e.code.Description
	}
	return e.code.Message + ": " + msg
}

func (e *serverError) Unwrap() error { return e.code }

// responseError turns an answer's error code and message into an error; nil for code 0.
func responseError(code int16, msg *string) error {
	if code == 0 {
		return nil
	}
	e := &serverError{code: kerr.TypedErrorForCode(code)}
	if msg != nil {
		e.msg = *msg
	}
	return e
}

// asServerError wraps a client-side *kerr.Error (kadm reports per-topic codes that way) like one the
// server answered.
func asServerError(err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return &serverError{code: ke}
	}
	return err
}

// reportAll returns nil for no errors. Otherwise it prints every error but the last to w, each on its
// own line as main prints errors, and returns the last, so a multi-topic failure shows one line per
// topic and exits 1.
func reportAll(w io.Writer, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs[:len(errs)-1] {
		fmt.Fprintln(w, "kraftctl:", err)
	}
	return errs[len(errs)-1]
}

// admin is one verb's connection: to a broker (--bootstrap-server), through which kgo routes admin
// requests to the broker that names itself controller, which forwards them; or straight to controllers
// (--bootstrap-controller), following NOT_CONTROLLER to the active one.
type admin struct {
	t       *target
	addr    string // the bootstrap address
	toCtl   bool   // --bootstrap-controller
	cl      *kgo.Client
	adm     *kadm.Client
	ctlAddr string                 // the controller requests go to: the bootstrap one until it names another
	ctlCl   map[string]*kgo.Client // one client per controller address
}

// dial checks the connection flags and makes the clients; it does not connect yet.
func (t *target) dial() (*admin, error) {
	switch {
	case t.bootstrapServer != "" && t.bootstrapController != "":
		return nil, usageError("give only one of --bootstrap-server and --bootstrap-controller")
	case t.bootstrapServer == "" && t.bootstrapController == "":
		return nil, usageError("one of --bootstrap-server (a broker's host:port) or --bootstrap-controller (a controller's host:port) is required")
	}
	a := &admin{t: t, ctlCl: map[string]*kgo.Client{}}
	if t.bootstrapController != "" {
		a.addr, a.toCtl, a.ctlAddr = t.bootstrapController, true, t.bootstrapController
		return a, nil
	}
	a.addr = t.bootstrapServer
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.addr), kgo.ClientID("kraftctl"), kgo.DialTimeout(min(t.timeout, 10*time.Second)))
	if err != nil {
		return nil, usageError("--bootstrap-server %q: %v", a.addr, err)
	}
	a.cl, a.adm = cl, kadm.NewClient(cl)
	return a, nil
}

// open dials the target and runs fn with the connection and a context bounded by --timeout.
func (t *target) open(fn func(ctx context.Context, a *admin) error) error {
	a, err := t.dial()
	if err != nil {
		return err
	}
	defer a.close()
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	return fn(ctx, a)
}

func (a *admin) close() {
	if a.cl != nil {
		a.cl.Close()
	}
	for _, cl := range a.ctlCl {
		cl.Close()
	}
}

// needBroker refuses a verb that reads Metadata when it was pointed at a controller: controllers serve
// no Metadata. To make the way forward one copy-and-paste, it names the brokers the controller knows.
func (a *admin) needBroker(verb string) error {
	if !a.toCtl {
		return nil
	}
	hint := "a broker's host:port"
	ctx, cancel := context.WithTimeout(context.Background(), min(a.t.timeout, 3*time.Second))
	defer cancel()
	if r, err := a.requestAt(ctx, a.addr, kmsg.NewPtrDescribeClusterRequest()); err == nil {
		var addrs []string
		for _, b := range r.(*kmsg.DescribeClusterResponse).Brokers {
			addrs = append(addrs, fmt.Sprintf("%s:%d", b.Host, b.Port))
		}
		if len(addrs) > 0 {
			hint = "one of this cluster's brokers: " + strings.Join(addrs, ", ")
		}
	}
	return usageError("%s reads topic metadata, which only brokers serve, not controllers: use --bootstrap-server with %s", verb, hint)
}

// send sends one request and returns its answer. Through a broker kgo picks the node (admin requests
// go to the broker named controller, which forwards them); to controllers the request goes to the
// active one, found by following NOT_CONTROLLER until the timeout.
func (a *admin) send(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if !a.toCtl {
		resp, err := a.cl.Request(ctx, req)
		if err != nil {
			return nil, a.explain(a.addr, req, err)
		}
		return resp, nil
	}
	addr := a.ctlAddr
	var last kmsg.Response // the last NOT_CONTROLLER answer, which stands if the deadline passes
	var lastErr error
	for hop := 0; ; hop++ {
		resp, err := a.requestAt(ctx, addr, req)
		switch {
		case err != nil && (addr == a.addr || ctx.Err() != nil):
			if last != nil && ctx.Err() != nil {
				return last, nil
			}
			if lastErr != nil && ctx.Err() != nil {
				return nil, lastErr
			}
			return nil, a.explain(addr, req, err)
		case err != nil:
			// The controller we were sent to is gone (it was the leader a moment ago): the bootstrap
			// controller will learn of the next leader.
			lastErr, addr = a.explain(addr, req, err), a.addr
		case !answersNotController(resp):
			a.ctlAddr = addr
			return resp, nil
		default:
			last = resp
			next, ok := a.activeController(ctx, addr)
			if ok && next != addr && hop < 3 {
				addr = next // the usual case: one hop from a standby to the active controller
				continue
			}
			if ok {
				addr = next
			}
		}
		// An election is under way, the new leader is catching up, or two controllers disagree for a
		// moment: wait a little and ask again, until the deadline.
		select {
		case <-ctx.Done():
			if last != nil {
				return last, nil
			}
			return nil, lastErr
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// explain words a failed request. Our servers close the connection on a request they do not serve, and
// kgo then guesses at a missing SASL handshake; ApiVersions tells what really happened.
func (a *admin) explain(addr string, req kmsg.Request, err error) error {
	var eof *kgo.ErrFirstReadEOF
	if !errors.As(err, &eof) {
		return fmt.Errorf("%s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(a.t.timeout, 3*time.Second))
	defer cancel()
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "kraftctl", "1"
	r, aerr := a.requestAt(ctx, addr, av)
	if aerr != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	resp := r.(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		return fmt.Errorf("%s: %w", addr, err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == req.Key() {
			return fmt.Errorf("%s closed the connection on a %s request it says it serves; see its log: %w", addr, kmsg.NameForKey(req.Key()), err)
		}
	}
	return fmt.Errorf("%s does not serve %s (API key %d): it is not in the node's ApiVersions, so the node runs software without it", addr, kmsg.NameForKey(req.Key()), req.Key())
}

// requestAt sends req straight to the node at addr, discovering nothing first.
func (a *admin) requestAt(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	cl, ok := a.ctlCl[addr]
	if !ok {
		var err error
		cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("kraftctl"), kgo.DialTimeout(min(a.t.timeout, 10*time.Second)))
		if err != nil {
			return nil, err
		}
		a.ctlCl[addr] = cl
	}
	return cl.SeedBrokers()[0].Request(ctx, req)
}

// activeController asks the controller at addr which controller is active and where it listens
// (DescribeCluster v1+ with EndpointType 2 lists the controllers).
func (a *admin) activeController(ctx context.Context, addr string) (string, bool) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.EndpointType = 2
	r, err := a.requestAt(ctx, addr, req)
	if err != nil {
		return "", false
	}
	dc := r.(*kmsg.DescribeClusterResponse)
	if dc.ErrorCode != 0 || dc.EndpointType != 2 || dc.ControllerID < 0 {
		return "", false
	}
	for _, b := range dc.Brokers {
		if b.NodeID == dc.ControllerID {
			return fmt.Sprintf("%s:%d", b.Host, b.Port), true
		}
	}
	return "", false
}

// answersNotController reports whether any part of an answer is NOT_CONTROLLER.
func answersNotController(resp kmsg.Response) bool {
	nc := kerr.NotController.Code
	switch r := resp.(type) {
	case *kmsg.CreateTopicsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.DeleteTopicsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.CreatePartitionsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.IncrementalAlterConfigsResponse:
		for _, res := range r.Resources {
			if res.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.DescribeConfigsResponse:
		for _, res := range r.Resources {
			if res.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.UpdateFeaturesResponse:
		return r.ErrorCode == nc || slices.ContainsFunc(r.Results, func(res kmsg.UpdateFeaturesResponseResult) bool { return res.ErrorCode == nc })
	}
	return false
}

// ---------------------------------------------------------------------------
// Topic selections

// topicSelection is the --topic flag of topics list, describe and delete: a comma-separated list of
// exact names and glob patterns (*, ? and [...], as path.Match). Kafka's tool reads the flag as a Java
// regular expression, where the '.' common in topic names matches any character; globs cannot be
// confused with a topic name, since '*', '?' and '[' are not allowed in one.
type topicSelection struct {
	names    []string // exact names, in the order given
	patterns []string
}

var topicNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

func parseTopicSelection(flag string) (topicSelection, error) {
	var s topicSelection
	if flag == "" {
		return s, nil
	}
	for _, item := range strings.Split(flag, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			return s, usageError("--topic %q holds an empty name", flag)
		case strings.ContainsAny(item, "*?["):
			if _, err := path.Match(item, ""); err != nil {
				return s, usageError("--topic: bad pattern %q: %v", item, err)
			}
			s.patterns = append(s.patterns, item)
		default:
			if err := validTopicName(item); err != nil {
				return s, err
			}
			s.names = append(s.names, item)
		}
	}
	return s, nil
}

// validTopicName applies Kafka's rules for topic names, so a typo is caught before any request.
func validTopicName(name string) error {
	switch {
	case name == "." || name == "..":
		return usageError("topic name %q is illegal: it cannot be \".\" or \"..\"", name)
	case len(name) > 249:
		return usageError("topic name %q is illegal: it is longer than 249 characters", name)
	case !topicNameRE.MatchString(name):
		return usageError("topic name %q is illegal: it may hold only ASCII letters, digits, '.', '_' and '-'", name)
	}
	return nil
}

func (s topicSelection) empty() bool { return len(s.names) == 0 && len(s.patterns) == 0 }

// matches reports whether a topic is selected; an empty selection selects every topic.
func (s topicSelection) matches(topic string) bool {
	if s.empty() {
		return true
	}
	for _, n := range s.names {
		if n == topic {
			return true
		}
	}
	for _, p := range s.patterns {
		if ok, _ := path.Match(p, topic); ok {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// key=value lists

var configKeyRE = regexp.MustCompile(`^[$a-zA-Z0-9._-]+$`)

// parseConfigPairs reads kafka-configs.sh's --add-config syntax: "k1=v1,k2=[a,b],k3=v3", where square
// brackets group a value holding commas (they are dropped from the value). A value may be empty.
func parseConfigPairs(flag string) ([][2]string, error) {
	var out [][2]string
	depth, start := 0, 0
	var items []string
	for i, c := range flag {
		switch c {
		case '[':
			depth++
		case ']':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				items = append(items, flag[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, usageError("--add-config %q: a '[' is never closed", flag)
	}
	items = append(items, flag[start:])
	for _, item := range items {
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usageError("--add-config: %q is not key=value (use key=[v1,v2] for a value holding commas)", item)
		}
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
			v = v[1 : len(v)-1]
		}
		if err := validConfigKey(k); err != nil {
			return nil, err
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func validConfigKey(k string) error {
	if !configKeyRE.MatchString(k) {
		return usageError("config name %q holds a character no config name has", k)
	}
	return nil
}
