package main

// `kraftctl features describe | upgrade | downgrade | disable | version-mapping`, after
// kafka-features.sh.
//
// describe reads the feature fields of ApiVersions (v3+: SupportedFeatures, FinalizedFeatures,
// FinalizedFeaturesEpoch) from the node asked, broker or controller. upgrade, downgrade and disable
// send one UpdateFeatures (key 57) to the active controller, through a broker (which forwards it) or
// straight to the controllers. UpdateFeatures v0 says "downgrade" with AllowDowngrade, v1 with
// UpgradeType; v0–1 answer per feature, v2 with the top-level error only: both answers are read.
// version-mapping needs no server: it prints this software's table of metadata.version levels.

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func featuresCommand() *cobra.Command {
	return groupCommand("features", "Describe and change feature levels such as metadata.version (like kafka-features.sh)",
		featuresDescribeCommand(), featuresChangeCommand(verbUpgrade), featuresChangeCommand(verbDowngrade),
		featuresDisableCommand(), featuresVersionMappingCommand())
}

// ---------------------------------------------------------------------------
// describe

func featuresDescribeCommand() *cobra.Command {
	var t target
	cmd := &cobra.Command{
		Use:   "describe (--bootstrap-server HOST:PORT | --bootstrap-controller HOST:PORT)",
		Short: "Show each feature's supported range and finalized level, as the node asked sees them",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return t.open(func(ctx context.Context, a *admin) error {
				req := kmsg.NewPtrApiVersionsRequest()
				req.ClientSoftwareName, req.ClientSoftwareVersion = "kraftctl", "1"
				// Straight to the node named: its own view is what describe shows, and a broker's
				// epoch is the offset of its own image.
				r, err := a.requestAt(ctx, a.addr, req)
				if err != nil {
					return fmt.Errorf("%s: %w", a.addr, err)
				}
				resp := r.(*kmsg.ApiVersionsResponse)
				if err := responseError(resp.ErrorCode, nil); err != nil {
					return fmt.Errorf("%s: %w", a.addr, err)
				}
				if len(resp.SupportedFeatures) == 0 && len(resp.FinalizedFeatures) == 0 {
					return fmt.Errorf("%s reports no features (its ApiVersions answer is v%d; features need v3 or later)", a.addr, resp.Version)
				}
				printFeatures(cmd.OutOrStdout(), resp)
				return nil
			})
		},
	}
	t.addFlags(cmd)
	return cmd
}

// printFeatures prints one line per feature, supported or finalized, sorted by name, in
// kafka-features.sh's layout. A missing range, level or epoch prints as "-".
func printFeatures(w io.Writer, resp *kmsg.ApiVersionsResponse) {
	type row struct{ min, max, finalized string }
	rows := map[string]*row{}
	get := func(name string) *row {
		if rows[name] == nil {
			rows[name] = &row{"-", "-", "-"}
		}
		return rows[name]
	}
	for _, f := range resp.SupportedFeatures {
		r := get(f.Name)
		r.min, r.max = featureLevelString(f.Name, f.MinVersion), featureLevelString(f.Name, f.MaxVersion)
	}
	for _, f := range resp.FinalizedFeatures {
		get(f.Name).finalized = featureLevelString(f.Name, f.MaxVersionLevel)
	}
	epoch := "-"
	if resp.FinalizedFeaturesEpoch >= 0 {
		epoch = strconv.FormatInt(resp.FinalizedFeaturesEpoch, 10)
	}
	names := make([]string, 0, len(rows))
	for name := range rows {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		r := rows[name]
		fmt.Fprintf(w, "Feature: %s\tSupportedMinVersion: %s\tSupportedMaxVersion: %s\tFinalizedVersionLevel: %s\tEpoch: %s\n",
			name, r.min, r.max, r.finalized, epoch)
	}
}

// featureLevelString names a metadata.version level ("1.1-IV1") when this software knows it; any other
// level, and every level of other features, prints as its number.
func featureLevelString(feature string, level int16) string {
	if feature == metadatalog.MetadataVersionFeature {
		if mv, ok := metadatalog.MetadataVersionByLevel(level); ok {
			return mv.Name
		}
	}
	return strconv.Itoa(int(level))
}

// ---------------------------------------------------------------------------
// upgrade, downgrade, disable

// Upgrade types of UpdateFeatures v1+ (KIP-778).
const (
	upgradeTypeUpgrade         int8 = 1
	upgradeTypeSafeDowngrade   int8 = 2
	upgradeTypeUnsafeDowngrade int8 = 3
)

// featureVerb is what the operator asked for; it picks the upgrade type and the wording of results.
type featureVerb string

const (
	verbUpgrade   featureVerb = "upgrade"
	verbDowngrade featureVerb = "downgrade"
	verbDisable   featureVerb = "disable"
)

// featureChange is one feature and the level asked for it.
type featureChange struct {
	name  string
	level int16
}

// featureUpdate is one UpdateFeatures request, as the command line asked for it.
type featureUpdate struct {
	verb        featureVerb
	upgradeType int8
	dryRun      bool
	changes     []featureChange
}

func featuresChangeCommand(verb featureVerb) *cobra.Command {
	var (
		t                 target
		metadata, release string
		features          []string
		dryRun, unsafe    bool
	)
	use := string(verb) + " --metadata V | --feature NAME=LEVEL... | --release-version V [--dry-run]"
	short := "Raise feature levels: metadata.version to a level's name (1.1-IV1), number or release"
	if verb == verbDowngrade {
		use = string(verb) + " --metadata V | --feature NAME=LEVEL... | --release-version V [--unsafe] [--dry-run]"
		short = "Lower feature levels: safely (no level in between changed metadata) or, with --unsafe, dropping what the lower level cannot hold"
	}
	cmd := &cobra.Command{
		Use:   use + " (--bootstrap-server HOST:PORT | --bootstrap-controller HOST:PORT)",
		Short: short,
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			changes, err := parseFeatureChanges(metadata, features, release)
			if err != nil {
				return err
			}
			u := featureUpdate{verb: verb, upgradeType: upgradeTypeUpgrade, dryRun: dryRun, changes: changes}
			if verb == verbDowngrade {
				u.upgradeType = downgradeType(unsafe)
			}
			return t.open(func(ctx context.Context, a *admin) error {
				return runFeatureUpdate(ctx, a, u, cmd.OutOrStdout(), cmd.ErrOrStderr())
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&metadata, "metadata", "", "the metadata.version level: a name (1.1-IV1), a number (4) or a release (1.1, its newest level)")
	f.StringArrayVar(&features, "feature", nil, "a feature and its level, NAME=LEVEL (repeatable)")
	f.StringVar(&release, "release-version", "", "set metadata.version to this release's newest level (1.1), or to a level's name")
	f.BoolVar(&dryRun, "dry-run", false, "validate only: the controller runs every check and changes nothing")
	if verb == verbDowngrade {
		f.BoolVar(&unsafe, "unsafe", false, "allow a downgrade that drops metadata the lower level cannot represent")
	}
	t.addFlags(cmd)
	return cmd
}

func featuresDisableCommand() *cobra.Command {
	var (
		t              target
		names          []string
		dryRun, unsafe bool
	)
	cmd := &cobra.Command{
		Use:   "disable --feature NAME... [--unsafe] [--dry-run] (--bootstrap-server HOST:PORT | --bootstrap-controller HOST:PORT)",
		Short: "Disable features (set their level to 0, as a downgrade)",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			changes, err := parseDisable(names)
			if err != nil {
				return err
			}
			u := featureUpdate{verb: verbDisable, upgradeType: downgradeType(unsafe), dryRun: dryRun, changes: changes}
			return t.open(func(ctx context.Context, a *admin) error {
				return runFeatureUpdate(ctx, a, u, cmd.OutOrStdout(), cmd.ErrOrStderr())
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&names, "feature", nil, "a feature to disable (repeatable)")
	f.BoolVar(&unsafe, "unsafe", false, "allow a downgrade that drops metadata the feature's absence cannot represent")
	f.BoolVar(&dryRun, "dry-run", false, "validate only: the controller runs every check and changes nothing")
	t.addFlags(cmd)
	return cmd
}

func downgradeType(unsafe bool) int8 {
	if unsafe {
		return upgradeTypeUnsafeDowngrade
	}
	return upgradeTypeSafeDowngrade
}

var featureNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

func validFeatureName(name string) error {
	if !featureNameRE.MatchString(name) {
		return usageError("feature name %q holds a character no feature name has (letters, digits, '.', '_' and '-')", name)
	}
	return nil
}

// parseFeatureChanges reads upgrade's and downgrade's flags: --metadata, repeated --feature
// NAME=LEVEL, or --release-version alone. A feature may be named once.
func parseFeatureChanges(metadata string, features []string, release string) ([]featureChange, error) {
	switch {
	case metadata == "" && len(features) == 0 && release == "":
		return nil, usageError("give --metadata V, --feature NAME=LEVEL or --release-version V")
	case release != "" && metadata != "":
		return nil, usageError("give only one of --metadata and --release-version")
	case release != "" && len(features) > 0:
		return nil, usageError("--release-version sets metadata.version by itself: give it without --feature")
	}
	var out []featureChange
	add := func(c featureChange, flag string) error {
		for _, prev := range out {
			if prev.name == c.name {
				return usageError("%s names %s a second time", flag, c.name)
			}
		}
		out = append(out, c)
		return nil
	}
	if release != "" {
		mv, err := metadatalog.LookupMetadataVersion(release)
		if err != nil {
			return nil, usageError("--release-version: %v", err)
		}
		return []featureChange{{metadatalog.MetadataVersionFeature, mv.Level}}, nil
	}
	if metadata != "" {
		level, err := metadataLevel("--metadata", metadata)
		if err != nil {
			return nil, err
		}
		out = append(out, featureChange{metadatalog.MetadataVersionFeature, level})
	}
	for _, f := range features {
		name, value, ok := strings.Cut(f, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return nil, usageError("--feature %q is not NAME=LEVEL", f)
		}
		if err := validFeatureName(name); err != nil {
			return nil, err
		}
		var level int16
		if name == metadatalog.MetadataVersionFeature {
			var err error
			if level, err = metadataLevel("--feature "+name, value); err != nil {
				return nil, err
			}
		} else {
			n, err := strconv.ParseInt(value, 10, 16)
			if err != nil || n < 0 {
				return nil, usageError("--feature %q: the level must be a number from 0 to 32767", f)
			}
			level = int16(n)
		}
		flag := "--feature"
		if name == metadatalog.MetadataVersionFeature && metadata != "" {
			flag = "--metadata and --feature"
		}
		if err := add(featureChange{name, level}, flag); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// metadataLevel reads a metadata.version: a level's name, its number or a release. A number this
// software does not know is passed on, so a newer controller can accept it (or say what it supports).
func metadataLevel(flag, s string) (int16, error) {
	mv, err := metadatalog.LookupMetadataVersion(s)
	if err == nil {
		return mv.Level, nil
	}
	if n, nerr := strconv.ParseInt(strings.TrimSpace(s), 10, 16); nerr == nil && n >= 1 {
		return int16(n), nil
	}
	return 0, usageError("%s: %v", flag, err)
}

// parseDisable reads disable's repeated --feature NAME.
func parseDisable(names []string) ([]featureChange, error) {
	if len(names) == 0 {
		return nil, usageError("give --feature NAME, the feature to disable")
	}
	var out []featureChange
	for _, name := range names {
		name = strings.TrimSpace(name)
		if strings.Contains(name, "=") {
			return nil, usageError("disable --feature takes a feature's name only, got %q (disable sets the level to 0)", name)
		}
		if err := validFeatureName(name); err != nil {
			return nil, err
		}
		if slices.ContainsFunc(out, func(c featureChange) bool { return c.name == name }) {
			return nil, usageError("--feature names %s a second time", name)
		}
		out = append(out, featureChange{name, 0})
	}
	return out, nil
}

// request builds the UpdateFeatures request; kgo negotiates its version with the node.
func (u featureUpdate) request(timeout time.Duration) *kmsg.UpdateFeaturesRequest {
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = int32(timeout.Milliseconds())
	req.ValidateOnly = u.dryRun
	for _, c := range u.changes {
		fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		fu.Feature, fu.MaxVersionLevel = c.name, c.level
		fu.UpgradeType = u.upgradeType                          // v1+
		fu.AllowDowngrade = u.upgradeType != upgradeTypeUpgrade // v0
		req.FeatureUpdates = append(req.FeatureUpdates, fu)
	}
	return req
}

func runFeatureUpdate(ctx context.Context, a *admin, u featureUpdate, stdout, stderr io.Writer) error {
	req := u.request(a.t.timeout)
	r, err := a.send(ctx, req)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.UpdateFeaturesResponse)
	return reportAll(stderr, u.report(stdout, resp))
}

// featureOutcome is one feature's result: code 0 for success, with the server's message either way.
type featureOutcome struct {
	code int16
	msg  string
}

// outcomes reads an answer, v0–2: a top-level error applies to every feature; otherwise v0–1 answer
// per feature and v2 answers only at the top.
func (u featureUpdate) outcomes(resp *kmsg.UpdateFeaturesResponse) []featureOutcome {
	top := featureOutcome{resp.ErrorCode, deref(resp.ErrorMessage)}
	out := make([]featureOutcome, len(u.changes))
	for i, c := range u.changes {
		switch {
		case top.code != 0 || resp.Version >= 2:
			out[i] = top
		default:
			j := slices.IndexFunc(resp.Results, func(r kmsg.UpdateFeaturesResponseResult) bool { return r.Feature == c.name })
			if j < 0 {
				out[i] = featureOutcome{kerr.UnknownServerError.Code, "the answer carries no result for " + c.name}
				continue
			}
			out[i] = featureOutcome{resp.Results[j].ErrorCode, deref(resp.Results[j].ErrorMessage)}
		}
	}
	return out
}

// report prints each feature's success to w, followed by the server's message when there is one, as
// kafka-features.sh does, and returns one error per failed feature.
func (u featureUpdate) report(w io.Writer, resp *kmsg.UpdateFeaturesResponse) []error {
	var errs []error
	printed := map[string]bool{}
	for i, o := range u.outcomes(resp) {
		c := u.changes[i]
		if o.code != 0 {
			errs = append(errs, fmt.Errorf("%s %s", u.failed(c), outcomeMessage(o)))
			continue
		}
		fmt.Fprintln(w, u.succeeded(c))
		if o.msg != "" && !printed[o.msg] {
			fmt.Fprintln(w, o.msg)
			printed[o.msg] = true
		}
	}
	return errs
}

// outcomeMessage is a failure's reason: the server's own words for INVALID_UPDATE_VERSION, as Kafka's
// tool prints them; for any other code the code's name too, since its message alone may not say it.
func outcomeMessage(o featureOutcome) string {
	if o.code == kerr.InvalidUpdateVersion.Code && o.msg != "" {
		return o.msg
	}
	return (&serverError{code: kerr.TypedErrorForCode(o.code), msg: o.msg}).Error()
}

// succeeded words a success: "metadata.version was upgraded to 4." ("can be" for a dry run).
func (u featureUpdate) succeeded(c featureChange) string {
	tense := "was"
	if u.dryRun {
		tense = "can be"
	}
	switch u.verb {
	case verbDisable:
		return fmt.Sprintf("%s %s disabled.", c.name, tense)
	case verbDowngrade:
		return fmt.Sprintf("%s %s downgraded to %d.", c.name, tense, c.level)
	}
	return fmt.Sprintf("%s %s upgraded to %d.", c.name, tense, c.level)
}

// failed words the start of a failure: "Could not upgrade metadata.version to 4." ("Can not" for a
// dry run).
func (u featureUpdate) failed(c featureChange) string {
	could := "Could not"
	if u.dryRun {
		could = "Can not"
	}
	if u.verb == verbDisable {
		return fmt.Sprintf("%s disable %s.", could, c.name)
	}
	return fmt.Sprintf("%s %s %s to %d.", could, u.verb, c.name, c.level)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ---------------------------------------------------------------------------
// version-mapping

func featuresVersionMappingCommand() *cobra.Command {
	var release string
	cmd := &cobra.Command{
		Use:   "version-mapping [--release-version V]",
		Short: "Print the metadata.version levels this software knows, or the one a release maps to",
		Args:  usageArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			versions := metadatalog.MetadataVersions
			if release != "" {
				mv, err := metadatalog.LookupMetadataVersion(release)
				if err != nil {
					return usageError("--release-version: %v", err)
				}
				versions = []metadatalog.MetadataVersion{mv}
			}
			printVersionMapping(cmd.OutOrStdout(), versions)
			return nil
		},
	}
	cmd.Flags().StringVar(&release, "release-version", "", "only this release's newest level (1.1), or one level's name or number")
	return cmd
}

func printVersionMapping(w io.Writer, versions []metadatalog.MetadataVersion) {
	for _, v := range versions {
		fmt.Fprintf(w, "%s=%d (%s)\n", metadatalog.MetadataVersionFeature, v.Level, v.Name)
	}
}
