package main

// `kraftctl shell`, after kafka-metadata-shell: browse a metadata image as a file tree (shell_tree.go),
// read from a snapshot file or built from a live cluster's metadata log.
//
// From a cluster, the shell follows the log the way a broker does, once: it finds a controller (the
// one --bootstrap-controller names, or through the broker --bootstrap-server names the quorum's leader
// from DescribeQuorum), fetches __cluster_metadata/0 from offset 1 with Fetch v12 (or the newest below
// it that the controller offers) and applies each entry until the image reaches the high watermark,
// the last committed offset. An answer that points to a snapshot (the log before the fetch offset is
// gone) makes it download that snapshot with FetchSnapshot and go on from the offset after it; an answer
// NOT_LEADER_OR_FOLLOWER (at metadata.version 1.0-IV0 only the active controller serves the log) sends
// it to the leader named. --timeout bounds the whole load.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/kraftgo/kraft/api/logfetch"
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"google.golang.org/protobuf/proto"
)

const (
	// shellLoadTimeout is --timeout's default: the whole load from a cluster, however many fetches.
	shellLoadTimeout = 30 * time.Second
	// shellFetchMaxVersion is the newest Fetch the shell sends: v13 names topics by id, and the
	// metadata log has none.
	shellFetchMaxVersion = 12
	// shellFetchMaxBytes is what one fetch asks for.
	shellFetchMaxBytes = 8 << 20
	// shellRetryPause is the wait before asking again after a refusal or a failed connection.
	shellRetryPause = 250 * time.Millisecond
)

func shellCommand() *cobra.Command {
	var (
		t            target
		snapshotPath string
		script       string
	)
	cmd := &cobra.Command{
		Use:   "shell (--snapshot FILE | --bootstrap-server HOST:PORT | --bootstrap-controller HOST:PORT) [-c 'COMMAND; ...']",
		Short: "Browse a metadata image as a file tree (like kafka-metadata-shell)",
		Long: `Browse a metadata image as a file tree, as kafka-metadata-shell does: the image of a snapshot file
(--snapshot), or the committed image of a running cluster, read from its metadata log
(--bootstrap-server names a broker, --bootstrap-controller a controller).

  /image/features/<name>                    a finalized feature's level
  /image/cluster/brokers/<id>/registration  a broker's registration (JSON)
  /image/topics/byName/<topic>/             id, name, and one file per partition (JSON)
  /image/topics/byId/<topic id>/            the same, by topic id
  /image/configs/topic/<topic>/<name>       a config's value
  /image/configs/broker/<id>/<name>         (<default>: the cluster-wide broker defaults)
  /image/provenance                         where the image came from: offset, epoch, source

Commands: ls [-l] [PATH...], cd [PATH], cat PATH..., tree [PATH], find [PATH], pwd, help, exit.

With -c the commands given (separated by ';') run and the shell exits; the first that fails stops it
with its error, exit code 1, as 'sh -e' does. Without -c the commands are read from standard input:
from a terminal, after a 'kraftctl:PWD> ' prompt, and an error is printed and the session goes on;
from a pipe or file, as with -c.`,
		Args: usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sources := 0
			for _, s := range []string{snapshotPath, t.bootstrapServer, t.bootstrapController} {
				if s != "" {
					sources++
				}
			}
			if sources != 1 {
				return usageError("give exactly one of --snapshot (a snapshot file), --bootstrap-server (a broker's host:port) and --bootstrap-controller (a controller's host:port)")
			}
			var si *shellImage
			var err error
			if snapshotPath != "" {
				si, err = loadSnapshotImage(snapshotPath)
			} else {
				si, err = loadLiveImage(&t)
			}
			if err != nil {
				return err
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			sh := newShell(si, out)
			if cmd.Flags().Changed("command") {
				_, err := runShellScript(sh, out, splitCommands(script))
				return err
			}
			return runShellInput(sh, cmd.InOrStdin(), out, cmd.ErrOrStderr(), isTerminal(cmd.InOrStdin()))
		},
	}
	cmd.Flags().StringVar(&snapshotPath, "snapshot", "", "a snapshot file (<offset>-<epoch>.checkpoint) to browse")
	t.addFlags(cmd)
	t.timeout = shellLoadTimeout
	cmd.Flags().Lookup("timeout").DefValue = shellLoadTimeout.String()
	cmd.Flags().Lookup("timeout").Usage = "how long loading the image from the cluster may take"
	cmd.Flags().StringVarP(&script, "command", "c", "", "run these commands, separated by ';', and exit")
	cmd.SetFlagErrorFunc(flagUsageError)
	return cmd
}

// runShellScript runs commands in order and stops at the first that fails, returning its error, or at
// exit, reporting it.
func runShellScript(sh *shell, out *bufio.Writer, commands []string) (exited bool, err error) {
	for _, c := range commands {
		err := sh.exec(c)
		if ferr := out.Flush(); ferr != nil {
			return false, ferr
		}
		if errors.Is(err, errShellExit) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("shell: %w", err)
		}
	}
	return false, nil
}

// runShellInput reads commands from in, a line at a time, until exit or the end of the input. From a
// terminal it prompts and goes on after an error, which it prints; otherwise it runs the input as
// runShellScript does.
func runShellInput(sh *shell, in io.Reader, out *bufio.Writer, errOut io.Writer, terminal bool) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for {
		if terminal {
			fmt.Fprintf(out, "kraftctl:%s> ", sh.cwd)
			if err := out.Flush(); err != nil {
				return err
			}
		}
		if !sc.Scan() {
			if terminal {
				fmt.Fprintln(out) // leave the user's own prompt on a line of its own
			}
			return sc.Err()
		}
		commands := splitCommands(sc.Text())
		if !terminal {
			if exited, err := runShellScript(sh, out, commands); exited || err != nil {
				return err
			}
			continue
		}
		for _, c := range commands {
			err := sh.exec(c)
			if ferr := out.Flush(); ferr != nil {
				return ferr
			}
			if errors.Is(err, errShellExit) {
				return nil
			}
			if err != nil {
				fmt.Fprintln(errOut, err)
			}
		}
	}
}

// isTerminal reports whether r is a terminal, for the prompt.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// ---------------------------------------------------------------------------
// From a snapshot file

// loadSnapshotImage reads a snapshot file. Its errors name the file.
func loadSnapshotImage(path string) (*shellImage, error) {
	img, h, err := metadatalog.ReadSnapshotImage(path)
	if err != nil {
		return nil, err
	}
	return &shellImage{
		img: img,
		provenance: []jsonField{
			{"source", "snapshot"},
			{"snapshot", snapshotProvenance(path, h)},
		},
	}, nil
}

func snapshotProvenance(path string, h snapshot.Header) snapshotHeaderLine {
	return snapshotHeaderLine{
		Type: "SnapshotHeader", Path: path, Offset: h.Offset, Epoch: h.Epoch,
		Voters: nonNil(h.Voters), Learners: nonNil(h.Learners), VotersOutgoing: h.VotersOutgoing, LearnersNext: h.LearnersNext,
		AutoLeave: h.AutoLeave, MetadataVersion: h.MetadataVersion, RecordCount: h.RecordCount,
		CreateTimeMs: h.CreateTimeMs, ClusterID: h.ClusterID,
	}
}

// ---------------------------------------------------------------------------
// From a live cluster

// logLoader builds the committed image from a cluster's metadata log.
type logLoader struct {
	t        *target
	versions *kversion.Versions
	clients  map[string]*kgo.Client
	// voters are the controllers' addresses by id, from DescribeQuorum; empty until asked.
	voters map[int32]string
	leader int32 // the quorum's leader as DescribeQuorum last named it, -1 if none
	// snap is the header of the snapshot the image started from, if one was downloaded.
	snap *snapshotHeaderLine
}

func loadLiveImage(t *target) (*shellImage, error) {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion((&kmsg.FetchRequest{}).Key(), shellFetchMaxVersion)
	for _, r := range []kmsg.Request{&kmsg.FetchSnapshotRequest{}, &kmsg.DescribeQuorumRequest{}, &kmsg.DescribeClusterRequest{}} {
		if _, ok := vs.LookupMaxKeyVersion(r.Key()); !ok {
			vs.SetMaxKeyVersion(r.Key(), r.MaxVersion())
		}
	}
	l := &logLoader{t: t, versions: vs, clients: map[string]*kgo.Client{}, voters: map[int32]string{}, leader: -1}
	defer l.close()
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	img, addr, hw, err := l.load(ctx)
	if err != nil {
		return nil, err
	}
	prov := []jsonField{{"source", "controller " + l.name(addr)}, {"highWatermark", hw}}
	if id, err := l.clusterID(ctx, addr); err == nil {
		prov = append(prov, jsonField{"clusterId", id})
	}
	if l.snap != nil {
		prov = append(prov, jsonField{"snapshot", l.snap})
	}
	return &shellImage{img: img, provenance: prov}, nil
}

func (l *logLoader) close() {
	for _, cl := range l.clients {
		cl.Close()
	}
}

// send sends req straight to the node at addr.
func (l *logLoader) send(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	cl, ok := l.clients[addr]
	if !ok {
		var err error
		cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("kraftctl"), kgo.MaxVersions(l.versions),
			kgo.DialTimeout(min(l.t.timeout, 10*time.Second)))
		if err != nil {
			return nil, err
		}
		l.clients[addr] = cl
	}
	return cl.SeedBrokers()[0].Request(ctx, req)
}

// discover asks the --bootstrap-* node for the quorum: its voters' addresses and its leader.
func (l *logLoader) discover(ctx context.Context) error {
	deadline, _ := ctx.Deadline()
	tt := *l.t
	tt.timeout = time.Until(deadline)
	if tt.timeout <= 0 {
		return ctx.Err()
	}
	q, err := describeQuorum(&tt)
	if err != nil {
		return fmt.Errorf("DescribeQuorum: %w", err)
	}
	for _, n := range q.resp.Nodes {
		if len(n.Listeners) > 0 {
			l.voters[n.NodeID] = net.JoinHostPort(n.Listeners[0].Host, strconv.Itoa(int(n.Listeners[0].Port)))
		}
	}
	if len(l.voters) == 0 {
		return errors.New("DescribeQuorum named no controller addresses (the node may be too old to list them)")
	}
	l.leader = q.part.LeaderID
	return nil
}

// next is the controller to try after the one at addr: the leader first, then the voters by id.
func (l *logLoader) next(addr string) string {
	var order []string
	if a, ok := l.voters[l.leader]; ok {
		order = append(order, a)
	}
	ids := make([]int32, 0, len(l.voters))
	for id := range l.voters {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id != l.leader {
			order = append(order, l.voters[id])
		}
	}
	if i := slices.Index(order, addr); i >= 0 {
		return order[(i+1)%len(order)]
	}
	return order[0]
}

// name is how a controller is named in messages: "1 at host:port" when its id is known.
func (l *logLoader) name(addr string) string {
	for id, a := range l.voters {
		if a == addr {
			return fmt.Sprintf("%d at %s", id, addr)
		}
	}
	return addr
}

func (l *logLoader) clusterID(ctx context.Context, addr string) (string, error) {
	r, err := l.send(ctx, addr, kmsg.NewPtrDescribeClusterRequest())
	if err != nil {
		return "", err
	}
	dc := r.(*kmsg.DescribeClusterResponse)
	if err := responseError(dc.ErrorCode, dc.ErrorMessage); err != nil {
		return "", err
	}
	return dc.ClusterID, nil
}

func (l *logLoader) fetchRequest(img *metadatalog.Image) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1 // not a replica: a tool
	req.MaxWaitMillis, req.MinBytes = 0, 0
	req.MaxBytes = shellFetchMaxBytes
	req.SessionID, req.SessionEpoch = 0, -1
	t := kmsg.NewFetchRequestTopic()
	t.Topic = snapshot.MetadataTopic
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition = snapshot.MetadataPartition
	p.FetchOffset = int64(img.Offset) + 1
	if img.Offset > 0 {
		p.LastFetchedEpoch = int32(img.Epoch)
	}
	p.PartitionMaxBytes = shellFetchMaxBytes
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

// retryable is a refusal or an unreachable controller: the load pauses and asks again, maybe
// elsewhere, until its deadline.
type retryable struct{ err error }

func (r *retryable) Error() string { return r.err.Error() }

// loadState is where a load stands.
type loadState struct {
	addr string             // the controller the next fetch goes to
	img  *metadatalog.Image // what has been applied
	hw   int64              // the last answer's high watermark
	// hops counts redirects in a row: they are followed at once, but two controllers that name each
	// other get a pause.
	hops int
}

// load fetches until the image reaches the high watermark; it returns the image, the address of the
// controller that served it and that high watermark. Refusals and unreachable controllers are retried
// until ctx ends; an answer the shell cannot build an image from ends the load at once.
func (l *logLoader) load(ctx context.Context) (*metadatalog.Image, string, int64, error) {
	st := &loadState{addr: l.t.bootstrapController, img: metadatalog.EmptyImage()}
	if st.addr == "" {
		if err := l.discoverRetrying(ctx); err != nil {
			return nil, "", 0, err
		}
		st.addr = l.next("")
	}
	var lastErr error
	gaveUp := func() error {
		if lastErr == nil {
			lastErr = ctx.Err()
		}
		return fmt.Errorf("gave up loading the metadata image after %v: %w", l.t.timeout, lastErr)
	}
	for {
		done, err := l.fetchOnce(ctx, st)
		var re *retryable
		switch {
		case done:
			return st.img, st.addr, st.hw, nil
		case errors.As(err, &re):
			lastErr = re.err
			select {
			case <-ctx.Done():
				return nil, "", 0, gaveUp()
			case <-time.After(shellRetryPause):
			}
		case err != nil:
			return nil, "", 0, err
		case ctx.Err() != nil:
			return nil, "", 0, gaveUp()
		}
	}
}

// fetchOnce sends one fetch and acts on the answer: it applies what the answer carries, starts over
// from the snapshot it names, or moves on to another controller. It reports done once the image has
// reached the high watermark.
func (l *logLoader) fetchOnce(ctx context.Context, st *loadState) (done bool, err error) {
	r, err := l.send(ctx, st.addr, l.fetchRequest(st.img))
	if err != nil {
		err = fmt.Errorf("controller %s: %w", l.name(st.addr), err)
		if len(l.voters) == 0 {
			// Only the --bootstrap-controller address is known: ask it, or wait for it, for the others.
			if derr := l.discover(ctx); derr != nil {
				return false, &retryable{err}
			}
		}
		st.addr = l.next(st.addr)
		return false, &retryable{err}
	}
	part, err := metadataPartition(r.(*kmsg.FetchResponse))
	if err != nil {
		return false, fmt.Errorf("controller %s: %w", l.name(st.addr), err)
	}
	code := kerr.ErrorForCode(part.ErrorCode)
	switch {
	case (code == nil || errors.Is(code, kerr.OffsetOutOfRange)) && part.SnapshotID.EndOffset > 0 && part.SnapshotID.Epoch > 0:
		// The log before our offset is gone: start again from the snapshot the controller names.
		img, err := l.downloadSnapshot(ctx, st.addr, part.SnapshotID.EndOffset, part.SnapshotID.Epoch)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kerr.SnapshotNotFound) {
				// Retention removed it as we asked: the next fetch names the newest.
				return false, &retryable{err}
			}
			return false, err
		}
		st.img = img
		return false, nil
	case code == nil:
	case errors.Is(code, kerr.NotLeaderForPartition):
		leader := part.CurrentLeader.LeaderID
		err := fmt.Errorf("controller %s does not serve the metadata log (%w), and names leader %d", l.name(st.addr), code, leader)
		if _, ok := l.voters[leader]; !ok {
			if derr := l.discover(ctx); derr != nil {
				err = fmt.Errorf("%w; %w", err, derr)
			}
		}
		if a, ok := l.voters[leader]; ok && leader >= 0 && a != st.addr {
			st.addr = a
			if st.hops++; st.hops <= 3 {
				return false, nil
			}
			return false, &retryable{err}
		}
		if len(l.voters) > 0 {
			st.addr = l.next(st.addr)
		}
		return false, &retryable{err}
	case errors.Is(code, kerr.OffsetOutOfRange):
		return false, fmt.Errorf("controller %s no longer holds the metadata log from offset %d (it starts at %d) and names no snapshot to start from",
			l.name(st.addr), st.img.Offset+1, part.LogStartOffset)
	default:
		err := fmt.Errorf("controller %s refused the fetch: %w", l.name(st.addr), code)
		if len(l.voters) > 0 {
			st.addr = l.next(st.addr)
		}
		return false, &retryable{err}
	}
	st.hops = 0
	before := st.img.Offset
	if st.img, err = l.apply(st.img, part); err != nil {
		return false, fmt.Errorf("controller %s: %w", l.name(st.addr), err)
	}
	st.hw = part.HighWatermark
	switch {
	case st.hw >= 0 && int64(st.img.Offset) >= st.hw:
		return true, nil
	case st.img.Offset == before:
		// Nothing new although the high watermark is ahead: the controller is still reading its log.
		return false, &retryable{fmt.Errorf("controller %s sent nothing from offset %d, below its high watermark %d", l.name(st.addr), st.img.Offset+1, st.hw)}
	}
	return false, nil
}

// discoverRetrying asks for the quorum until it answers or ctx ends.
func (l *logLoader) discoverRetrying(ctx context.Context) error {
	for {
		err := l.discover(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up finding the controllers after %v: %w", l.t.timeout, err)
		case <-time.After(shellRetryPause):
		}
	}
}

func metadataPartition(resp *kmsg.FetchResponse) (*kmsg.FetchResponseTopicPartition, error) {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("the fetch was refused: %w", err)
	}
	for i := range resp.Topics {
		if resp.Topics[i].Topic != snapshot.MetadataTopic {
			continue
		}
		for j := range resp.Topics[i].Partitions {
			if resp.Topics[i].Partitions[j].Partition == snapshot.MetadataPartition {
				return &resp.Topics[i].Partitions[j], nil
			}
		}
	}
	return nil, fmt.Errorf("the fetch answer does not carry %s-%d", snapshot.MetadataTopic, snapshot.MetadataPartition)
}

// apply applies the entries of one answer, as a broker does: in order, each exactly once, no gaps.
func (l *logLoader) apply(img *metadatalog.Image, part *kmsg.FetchResponseTopicPartition) (*metadatalog.Image, error) {
	if part.DivergingEpoch.EndOffset > 0 && part.DivergingEpoch.Epoch > 0 {
		return nil, fmt.Errorf("the controller says the log diverges from what was applied (epoch %d ends at offset %d; applied offset %d epoch %d)",
			part.DivergingEpoch.Epoch, part.DivergingEpoch.EndOffset, img.Offset, img.Epoch)
	}
	entries, err := logfetch.DecodeEntries(part.RecordBatches)
	if err != nil {
		return nil, fmt.Errorf("the metadata log from offset %d does not decode: %w", img.Offset+1, err)
	}
	for _, e := range entries {
		if e.Offset <= img.Offset {
			continue
		}
		if e.Offset != img.Offset+1 {
			return nil, fmt.Errorf("the metadata log skips from offset %d to %d", img.Offset, e.Offset)
		}
		var batch *metadatapb.RecordBatch
		if len(e.Data) > 0 {
			batch = &metadatapb.RecordBatch{}
			if err := proto.Unmarshal(e.Data, batch); err != nil {
				return nil, fmt.Errorf("the metadata log entry at offset %d does not decode as a record batch: %w", e.Offset, err)
			}
		}
		next, err := img.Apply(e.Offset, e.Epoch, batch)
		if err != nil {
			return nil, fmt.Errorf("applying the metadata log: %w", err)
		}
		img = next
	}
	return img, nil
}

// downloadSnapshot fetches the snapshot a controller named into a temporary directory, builds its
// image and removes the directory. endOffset is the snapshot's last included offset.
func (l *logLoader) downloadSnapshot(ctx context.Context, addr string, endOffset int64, epoch int32) (*metadatalog.Image, error) {
	dir, err := os.MkdirTemp("", "kraftctl-shell-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The controller may check the cluster id a FetchSnapshot carries; an empty one would not match.
	clusterID, err := l.clusterID(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("controller %s: DescribeCluster: %w", l.name(addr), err)
	}
	fetch := func(ctx context.Context, req *kmsg.FetchSnapshotRequest) (*kmsg.FetchSnapshotResponse, error) {
		r, err := l.send(ctx, addr, req)
		if err != nil {
			return nil, err
		}
		return r.(*kmsg.FetchSnapshotResponse), nil
	}
	path, err := snapshot.Download(ctx, snapshot.DownloadRequest{
		Dir: dir, ClusterID: clusterID, ReplicaID: -1, Offset: uint64(endOffset), Epoch: uint64(epoch),
	}, fetch)
	if err != nil {
		return nil, fmt.Errorf("controller %s: %w", l.name(addr), err)
	}
	img, h, err := metadatalog.ReadSnapshotImage(path)
	if err != nil {
		return nil, fmt.Errorf("controller %s: %w", l.name(addr), err)
	}
	prov := snapshotProvenance(snapshot.FileName(h.Offset, h.Epoch), h)
	l.snap = &prov
	return img, nil
}
