package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/cmd/internal/config"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// runFeatures runs `features args...` as kraftctl would; exit is the code main would exit with.
func runFeatures(t *testing.T, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	cmd := featuresCommand()
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(&errOut, "kraftctl:", err)
		var cerr *config.Error
		if errors.As(err, &cerr) {
			return out.String(), errOut.String(), 2
		}
		return out.String(), errOut.String(), 1
	}
	return out.String(), errOut.String(), 0
}

func TestFeaturesParseChanges(t *testing.T) {
	mv := metadatalog.MetadataVersionFeature
	for _, tc := range []struct {
		metadata, release string
		features          []string
		want              []featureChange
		err               string // a usage error holding this
	}{
		{metadata: "1.1-IV1", want: []featureChange{{mv, 4}}},
		{metadata: "3", want: []featureChange{{mv, 3}}},
		{metadata: "1.0", want: []featureChange{{mv, 2}}},
		{metadata: "9", want: []featureChange{{mv, 9}}}, // a newer controller may know it
		{release: "1.1", want: []featureChange{{mv, 4}}},
		{release: "1.0-IV0", want: []featureChange{{mv, 1}}},
		{features: []string{"metadata.version=1.0-IV1"}, want: []featureChange{{mv, 2}}},
		{features: []string{"group.version=1", " kraft.version = 0 "}, want: []featureChange{{"group.version", 1}, {"kraft.version", 0}}},
		{metadata: "4", features: []string{"group.version=1"}, want: []featureChange{{mv, 4}, {"group.version", 1}}},

		{err: "give --metadata V, --feature NAME=LEVEL or --release-version V"},
		{metadata: "4", release: "1.1", err: "give only one of --metadata and --release-version"},
		{release: "1.1", features: []string{"group.version=1"}, err: "without --feature"},
		{metadata: "2.0-IV0", err: `--metadata: unknown metadata.version "2.0-IV0"`},
		{metadata: "0", err: "--metadata: unknown metadata.version"},
		{release: "7.7", err: `--release-version: unknown metadata.version "7.7"`},
		{features: []string{"group.version"}, err: `--feature "group.version" is not NAME=LEVEL`},
		{features: []string{"=1"}, err: "is not NAME=LEVEL"},
		{features: []string{"group.version="}, err: "is not NAME=LEVEL"},
		{features: []string{"group.version=-1"}, err: "the level must be a number from 0 to 32767"},
		{features: []string{"group.version=x"}, err: "the level must be a number"},
		{features: []string{"group.version=40000"}, err: "the level must be a number"},
		{features: []string{"metadata.version=7.0-IV9"}, err: "--feature metadata.version: unknown metadata.version"},
		{features: []string{"bad name=1"}, err: `feature name "bad name" holds a character`},
		{features: []string{"group.version=1", "group.version=0"}, err: "--feature names group.version a second time"},
		{metadata: "4", features: []string{"metadata.version=3"}, err: "--metadata and --feature names metadata.version a second time"},
	} {
		name := fmt.Sprintf("metadata=%q,release=%q,features=%q", tc.metadata, tc.release, tc.features)
		got, err := parseFeatureChanges(tc.metadata, tc.features, tc.release)
		if tc.err != "" {
			var cerr *config.Error
			if !errors.As(err, &cerr) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %v, %v; want a usage error holding %q", name, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, tc.want)
		}
	}
}

func TestFeaturesParseDisable(t *testing.T) {
	got, err := parseDisable([]string{"group.version", "kraft.version"})
	if want := []featureChange{{"group.version", 0}, {"kraft.version", 0}}; err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, tc := range []struct {
		names []string
		err   string
	}{
		{nil, "give --feature NAME"},
		{[]string{"group.version=0"}, "takes a feature's name only"},
		{[]string{"a/b"}, "holds a character"},
		{[]string{"x", "x"}, "names x a second time"},
	} {
		var cerr *config.Error
		if _, err := parseDisable(tc.names); !errors.As(err, &cerr) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: got %v, want a usage error holding %q", tc.names, err, tc.err)
		}
	}
}

func TestFeaturesPrintDescribe(t *testing.T) {
	resp := kmsg.NewPtrApiVersionsResponse()
	sf := func(name string, lo, hi int16) kmsg.ApiVersionsResponseSupportedFeature {
		f := kmsg.NewApiVersionsResponseSupportedFeature()
		f.Name, f.MinVersion, f.MaxVersion = name, lo, hi
		return f
	}
	ff := func(name string, level int16) kmsg.ApiVersionsResponseFinalizedFeature {
		f := kmsg.NewApiVersionsResponseFinalizedFeature()
		f.Name, f.MinVersionLevel, f.MaxVersionLevel = name, level, level
		return f
	}
	// Supported only, both, and finalized only; and a metadata.version level this software lacks.
	resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{sf("metadata.version", 1, 9), sf("group.version", 0, 1)}
	resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{ff("zeta.version", 2), ff("metadata.version", 4)}
	resp.FinalizedFeaturesEpoch = 1234
	var out bytes.Buffer
	printFeatures(&out, resp)
	want := lines(
		"Feature: group.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: -\tEpoch: 1234",
		"Feature: metadata.version\tSupportedMinVersion: 1.0-IV0\tSupportedMaxVersion: 9\tFinalizedVersionLevel: 1.1-IV1\tEpoch: 1234",
		"Feature: zeta.version\tSupportedMinVersion: -\tSupportedMaxVersion: -\tFinalizedVersionLevel: 2\tEpoch: 1234",
	)
	if out.String() != want {
		t.Errorf("printed\n%q\nwant\n%q", out.String(), want)
	}

	// A broker that has applied nothing yet: no finalized levels, epoch -1.
	resp = kmsg.NewPtrApiVersionsResponse()
	resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{sf("metadata.version", 1, 4)}
	resp.FinalizedFeaturesEpoch = -1
	out.Reset()
	printFeatures(&out, resp)
	if want := "Feature: metadata.version\tSupportedMinVersion: 1.0-IV0\tSupportedMaxVersion: 1.1-IV1\tFinalizedVersionLevel: -\tEpoch: -\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

func TestFeaturesRequest(t *testing.T) {
	u := featureUpdate{verb: verbDowngrade, upgradeType: upgradeTypeUnsafeDowngrade, dryRun: true,
		changes: []featureChange{{"metadata.version", 2}, {"group.version", 0}}}
	req := u.request(7 * time.Second)
	if req.TimeoutMillis != 7000 || !req.ValidateOnly || len(req.FeatureUpdates) != 2 {
		t.Fatalf("request %+v", req)
	}
	for i, f := range req.FeatureUpdates {
		if f.Feature != u.changes[i].name || f.MaxVersionLevel != u.changes[i].level || f.UpgradeType != 3 || !f.AllowDowngrade {
			t.Errorf("update %d: %+v", i, f)
		}
	}
	up := featureUpdate{verb: verbUpgrade, upgradeType: upgradeTypeUpgrade, changes: []featureChange{{"metadata.version", 4}}}
	if f := up.request(0).FeatureUpdates[0]; f.UpgradeType != 1 || f.AllowDowngrade {
		t.Errorf("upgrade: %+v", f)
	}
}

// TestFeaturesReport reads every shape of answer: v2's top level only, v0–1's per-feature results, a
// top-level error over results, and a missing result.
func TestFeaturesReport(t *testing.T) {
	str := func(s string) *string { return &s }
	result := func(name string, code int16, msg *string) kmsg.UpdateFeaturesResponseResult {
		r := kmsg.NewUpdateFeaturesResponseResult()
		r.Feature, r.ErrorCode, r.ErrorMessage = name, code, msg
		return r
	}
	mv := []featureChange{{"metadata.version", 4}}
	invalid := kerr.InvalidUpdateVersion.Code
	refused := "Invalid update version 4 for feature metadata.version. Broker 5 only supports versions 1-2."
	for _, tc := range []struct {
		name       string
		u          featureUpdate
		version    int16
		code       int16
		msg        *string
		results    []kmsg.UpdateFeaturesResponseResult
		out        string
		errs       []string
		usageError bool
	}{
		{name: "v2 upgrade", u: featureUpdate{verb: verbUpgrade, changes: mv}, version: 2,
			out: "metadata.version was upgraded to 4.\n"},
		{name: "v2 dry run", u: featureUpdate{verb: verbUpgrade, dryRun: true, changes: mv}, version: 2,
			out: "metadata.version can be upgraded to 4.\n"},
		{name: "v2 refused", u: featureUpdate{verb: verbUpgrade, changes: mv}, version: 2, code: invalid, msg: str(refused),
			errs: []string{"Could not upgrade metadata.version to 4. " + refused}},
		{name: "v2 dry run refused", u: featureUpdate{verb: verbUpgrade, dryRun: true, changes: mv}, version: 2, code: invalid, msg: str(refused),
			errs: []string{"Can not upgrade metadata.version to 4. " + refused}},
		{name: "v2 unsafe downgrade with message", u: featureUpdate{verb: verbDowngrade, changes: []featureChange{{"metadata.version", 2}}}, version: 2,
			msg: str("dropped 2 ACL entries and 1 client-quota entry"),
			out: "metadata.version was downgraded to 2.\ndropped 2 ACL entries and 1 client-quota entry\n"},
		{name: "v2 other code", u: featureUpdate{verb: verbDowngrade, changes: []featureChange{{"metadata.version", 2}}}, version: 2,
			code: kerr.NotController.Code, msg: str("not the active controller"),
			errs: []string{"Could not downgrade metadata.version to 2. NOT_CONTROLLER: not the active controller"}},
		{name: "v2 code without message", u: featureUpdate{verb: verbDisable, changes: []featureChange{{"group.version", 0}}}, version: 2,
			code: kerr.ClusterAuthorizationFailed.Code,
			errs: []string{"Could not disable group.version. CLUSTER_AUTHORIZATION_FAILED: " + kerr.ClusterAuthorizationFailed.Description}},
		{name: "v1 per feature", u: featureUpdate{verb: verbUpgrade, changes: []featureChange{{"metadata.version", 4}, {"group.version", 1}}}, version: 1,
			results: []kmsg.UpdateFeaturesResponseResult{result("group.version", invalid, str("no such feature")), result("metadata.version", 0, nil)},
			out:     "metadata.version was upgraded to 4.\n",
			errs:    []string{"Could not upgrade group.version to 1. no such feature"}},
		{name: "v1 result message", u: featureUpdate{verb: verbDowngrade, dryRun: true, changes: []featureChange{{"metadata.version", 2}}}, version: 1,
			results: []kmsg.UpdateFeaturesResponseResult{result("metadata.version", 0, str("would drop 3 ACL entries"))},
			out:     "metadata.version can be downgraded to 2.\nwould drop 3 ACL entries\n"},
		{name: "v1 disable", u: featureUpdate{verb: verbDisable, changes: []featureChange{{"group.version", 0}}}, version: 1,
			results: []kmsg.UpdateFeaturesResponseResult{result("group.version", 0, nil)},
			out:     "group.version was disabled.\n"},
		{name: "v1 top-level error wins", u: featureUpdate{verb: verbUpgrade, changes: mv}, version: 1, code: invalid, msg: str(refused),
			results: []kmsg.UpdateFeaturesResponseResult{result("metadata.version", invalid, str(refused))},
			errs:    []string{"Could not upgrade metadata.version to 4. " + refused}},
		{name: "v0 missing result", u: featureUpdate{verb: verbUpgrade, changes: mv}, version: 0,
			errs: []string{"Could not upgrade metadata.version to 4. UNKNOWN_SERVER_ERROR: the answer carries no result for metadata.version"}},
	} {
		resp := kmsg.NewPtrUpdateFeaturesResponse()
		resp.Version, resp.ErrorCode, resp.ErrorMessage, resp.Results = tc.version, tc.code, tc.msg, tc.results
		var out bytes.Buffer
		errs := tc.u.report(&out, resp)
		var got []string
		for _, e := range errs {
			got = append(got, e.Error())
		}
		if out.String() != tc.out || !slices.Equal(got, tc.errs) {
			t.Errorf("%s: printed %q and errors %q; want %q and %q", tc.name, out.String(), got, tc.out, tc.errs)
		}
	}
}

func TestFeaturesVersionMapping(t *testing.T) {
	for _, tc := range []struct {
		args []string
		out  string
		exit int
	}{
		{nil, lines("metadata.version=1 (1.0-IV0)", "metadata.version=2 (1.0-IV1)", "metadata.version=3 (1.1-IV0)", "metadata.version=4 (1.1-IV1)"), 0},
		{[]string{"--release-version", "1.1"}, "metadata.version=4 (1.1-IV1)\n", 0},
		{[]string{"--release-version", "1.0"}, "metadata.version=2 (1.0-IV1)\n", 0},
		{[]string{"--release-version", "1.1-IV0"}, "metadata.version=3 (1.1-IV0)\n", 0},
		{[]string{"--release-version", "3.9"}, "", 2},
		{[]string{"extra"}, "", 2},
	} {
		out, errOut, exit := runFeatures(t, append([]string{"version-mapping"}, tc.args...)...)
		if out != tc.out || exit != tc.exit {
			t.Errorf("version-mapping %q: exit %d, printed %q (stderr %q); want exit %d and %q", tc.args, exit, out, errOut, tc.exit, tc.out)
		}
	}
}

func TestFeaturesUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"upgrade", "--bootstrap-server", "127.0.0.1:1"},
		{"upgrade", "--metadata", "1.1-IV1", "--release-version", "1.1", "--bootstrap-server", "127.0.0.1:1"},
		{"upgrade", "--metadata", "9.9-IV9", "--bootstrap-server", "127.0.0.1:1"},
		{"upgrade", "--feature", "metadata.version", "--bootstrap-server", "127.0.0.1:1"},
		{"upgrade", "--metadata", "4"}, // no server named
		{"upgrade", "--metadata", "4", "--bootstrap-server", "a:1", "--bootstrap-controller", "b:1"},
		{"upgrade", "--metadata", "4", "--unsafe", "--bootstrap-server", "127.0.0.1:1"}, // upgrade has no --unsafe
		{"downgrade", "--bootstrap-controller", "127.0.0.1:1"},
		{"disable", "--bootstrap-controller", "127.0.0.1:1"},
		{"disable", "--feature", "metadata.version=0", "--bootstrap-controller", "127.0.0.1:1"},
		{"describe"},
		{"describe", "stray", "--bootstrap-server", "127.0.0.1:1"},
		{"nonsense"},
	} {
		if out, errOut, exit := runFeatures(t, args...); exit != 2 || out != "" || !strings.HasPrefix(errOut, "kraftctl: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 with one error", args, exit, out, errOut)
		}
	}
}

// fakeFeaturesController is a controller as `kraftctl features` sees it: ApiVersions with features,
// DescribeCluster naming the active controller, and UpdateFeatures, which a standby refuses with
// NOT_CONTROLLER. The active one answers what answer says and records each request.
type fakeFeaturesController struct {
	id, leader int32
	addrs      map[int32]string
	answer     func(req *kmsg.UpdateFeaturesRequest, resp *kmsg.UpdateFeaturesResponse)

	mu struct {
		sync.Mutex
		updates []*kmsg.UpdateFeaturesRequest
	}
}

func (f *fakeFeaturesController) Handle(_ context.Context, req kmsg.Request) (kmsg.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r := req.(type) {
	case *kmsg.DescribeClusterRequest:
		resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
		resp.EndpointType, resp.ControllerID = r.EndpointType, f.leader
		for id, addr := range f.addrs {
			host, port, _ := net.SplitHostPort(addr)
			pn, _ := strconv.Atoi(port)
			b := kmsg.NewDescribeClusterResponseBroker()
			b.NodeID, b.Host, b.Port = id, host, int32(pn)
			resp.Brokers = append(resp.Brokers, b)
		}
		return resp, nil
	case *kmsg.UpdateFeaturesRequest:
		resp := r.ResponseKind().(*kmsg.UpdateFeaturesResponse)
		if f.id != f.leader {
			msg := "this controller is not the active controller"
			resp.ErrorCode, resp.ErrorMessage = kerr.NotController.Code, &msg
			return resp, nil
		}
		f.mu.updates = append(f.mu.updates, r)
		f.answer(r, resp)
		return resp, nil
	}
	return nil, fmt.Errorf("unexpected %T", req)
}

func (f *fakeFeaturesController) decorate(resp *kmsg.ApiVersionsResponse) {
	sf := kmsg.NewApiVersionsResponseSupportedFeature()
	sf.Name, sf.MinVersion, sf.MaxVersion = "metadata.version", 1, 4
	resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
	ff := kmsg.NewApiVersionsResponseFinalizedFeature()
	ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = "metadata.version", 2, 2
	resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
	resp.FinalizedFeaturesEpoch = int64(100 + f.id) // each node its own offset
}

// startFakeFeaturesControllers serves controllers 1 (a standby) and 2 (active), serving UpdateFeatures
// up to version maxUpdate.
func startFakeFeaturesControllers(t *testing.T, maxUpdate int16, answer func(*kmsg.UpdateFeaturesRequest, *kmsg.UpdateFeaturesResponse)) (map[int32]string, map[int32]*fakeFeaturesController) {
	t.Helper()
	addrs := map[int32]string{}
	fakes := map[int32]*fakeFeaturesController{}
	lns := map[int32]net.Listener{}
	for _, id := range []int32{1, 2} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id], addrs[id] = ln, ln.Addr().String()
	}
	for id, ln := range lns {
		f := &fakeFeaturesController{id: id, leader: 2, addrs: addrs, answer: answer}
		fakes[id] = f
		srv := kafkaserver.Serve(kafkaserver.Options{
			Listener: ln,
			Handler:  f,
			APIs: map[int16]kafkaserver.VersionRange{
				(&kmsg.DescribeClusterRequest{}).Key(): {Min: 0, Max: (&kmsg.DescribeClusterRequest{}).MaxVersion()},
				(&kmsg.UpdateFeaturesRequest{}).Key():  {Min: 0, Max: maxUpdate},
			},
			DecorateApiVersions: f.decorate,
			Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		t.Cleanup(func() { srv.Close() })
	}
	return addrs, fakes
}

// TestFeaturesAgainstFakeControllers sends each verb to the standby: kraftctl finds the active
// controller, negotiates the version the controllers serve, and reads both answer shapes.
func TestFeaturesAgainstFakeControllers(t *testing.T) {
	for _, maxUpdate := range []int16{1, 2} {
		t.Run(fmt.Sprintf("UpdateFeatures v%d", maxUpdate), func(t *testing.T) {
			answer := func(req *kmsg.UpdateFeaturesRequest, resp *kmsg.UpdateFeaturesResponse) {
				var code int16
				var msg *string
				u := req.FeatureUpdates[0]
				switch {
				case u.Feature != "metadata.version":
					code, msg = kerr.InvalidUpdateVersion.Code, kmsg.StringPtr("Invalid update version for feature "+u.Feature+": the controller does not support that feature.")
				case u.UpgradeType == 2 && u.MaxVersionLevel < 3:
					code, msg = kerr.InvalidUpdateVersion.Code, kmsg.StringPtr(fmt.Sprintf("Invalid metadata.version %d. Refusing to perform the requested downgrade because it might delete metadata information.", u.MaxVersionLevel))
				case u.UpgradeType == 3 && req.ValidateOnly:
					msg = kmsg.StringPtr("would drop 2 ACL entries and 1 client-quota entry")
				case u.UpgradeType == 3:
					msg = kmsg.StringPtr("dropped 2 ACL entries and 1 client-quota entry")
				}
				resp.ErrorCode, resp.ErrorMessage = code, msg
				if req.Version < 2 {
					for _, u := range req.FeatureUpdates {
						r := kmsg.NewUpdateFeaturesResponseResult()
						r.Feature, r.ErrorCode, r.ErrorMessage = u.Feature, code, msg
						resp.Results = append(resp.Results, r)
					}
				}
			}
			addrs, fakes := startFakeFeaturesControllers(t, maxUpdate, answer)
			standby := []string{"--bootstrap-controller", addrs[1], "--timeout", "10s"}

			for _, tc := range []struct {
				args          []string
				out, err      string
				exit          int
				upgradeType   int8
				level         int16
				validateOnly  bool
				featureInWire string
			}{
				{args: []string{"upgrade", "--metadata", "1.1-IV1"}, out: "metadata.version was upgraded to 4.\n", upgradeType: 1, level: 4},
				{args: []string{"upgrade", "--release-version", "1.0", "--dry-run"}, out: "metadata.version can be upgraded to 2.\n", upgradeType: 1, level: 2, validateOnly: true},
				{args: []string{"downgrade", "--metadata", "1.0-IV1"}, exit: 1, upgradeType: 2, level: 2,
					err: "kraftctl: Could not downgrade metadata.version to 2. Invalid metadata.version 2. Refusing to perform the requested downgrade because it might delete metadata information.\n"},
				{args: []string{"downgrade", "--metadata", "2", "--unsafe"}, out: "metadata.version was downgraded to 2.\ndropped 2 ACL entries and 1 client-quota entry\n", upgradeType: 3, level: 2},
				{args: []string{"downgrade", "--feature", "metadata.version=2", "--unsafe", "--dry-run"}, out: "metadata.version can be downgraded to 2.\nwould drop 2 ACL entries and 1 client-quota entry\n", upgradeType: 3, level: 2, validateOnly: true},
				{args: []string{"disable", "--feature", "group.version"}, exit: 1, upgradeType: 2, level: 0, featureInWire: "group.version",
					err: "kraftctl: Could not disable group.version. Invalid update version for feature group.version: the controller does not support that feature.\n"},
			} {
				fakes[2].mu.Lock()
				fakes[2].mu.updates = nil
				fakes[2].mu.Unlock()
				out, errOut, exit := runFeatures(t, append(tc.args, standby...)...)
				if out != tc.out || errOut != tc.err || exit != tc.exit {
					t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tc.args, exit, out, errOut, tc.exit, tc.out, tc.err)
				}
				fakes[2].mu.Lock()
				updates := fakes[2].mu.updates
				fakes[2].mu.Unlock()
				want := tc.featureInWire
				if want == "" {
					want = "metadata.version"
				}
				if len(updates) != 1 {
					t.Errorf("%q: the active controller got %d requests, want 1", tc.args, len(updates))
					continue
				}
				req := updates[0]
				u := req.FeatureUpdates[0]
				if req.Version != maxUpdate || req.ValidateOnly != tc.validateOnly || req.TimeoutMillis != 10000 || len(req.FeatureUpdates) != 1 ||
					u.Feature != want || u.MaxVersionLevel != tc.level || u.UpgradeType != tc.upgradeType {
					t.Errorf("%q: request v%d %+v, update %+v", tc.args, req.Version, req, u)
				}
			}
			if n := len(fakes[1].mu.updates); n != 0 {
				t.Errorf("the standby served %d updates", n)
			}

			// describe shows the node asked, standby or not.
			for id, addr := range addrs {
				out, errOut, exit := runFeatures(t, "describe", "--bootstrap-controller", addr)
				want := fmt.Sprintf("Feature: metadata.version\tSupportedMinVersion: 1.0-IV0\tSupportedMaxVersion: 1.1-IV1\tFinalizedVersionLevel: 1.0-IV1\tEpoch: %d\n", 100+id)
				if exit != 0 || out != want || errOut != "" {
					t.Errorf("describe at %d: exit %d, stdout %q, stderr %q; want %q", id, exit, out, errOut, want)
				}
			}
		})
	}
}

// A controller that keeps answering NOT_CONTROLLER: the answer stands once the deadline passes.
func TestFeaturesNotControllerUntilDeadline(t *testing.T) {
	addrs, fakes := startFakeFeaturesControllers(t, 2, nil)
	for _, f := range fakes {
		f.leader = 3 // nobody
	}
	_, errOut, exit := runFeatures(t, "upgrade", "--metadata", "4", "--bootstrap-controller", addrs[1], "--timeout", "1s")
	if exit != 1 || !strings.Contains(errOut, "Could not upgrade metadata.version to 4. NOT_CONTROLLER: this controller is not the active controller") {
		t.Errorf("exit %d, stderr %q", exit, errOut)
	}
}
