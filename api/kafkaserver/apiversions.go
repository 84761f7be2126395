package kafkaserver

import (
	"log/slog"
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	apiVersionsKey int16 = 18
	// apiVersionsMaxVersion is the newest ApiVersions we answer. v5
	// (KIP-1242, cluster/node identity checks) is deliberately not served:
	// clients that send it get the KIP-511 downgrade answer and retry at 4.
	apiVersionsMaxVersion int16 = 4
)

// softwareRe is KIP-511's rule for ClientSoftwareName and
// ClientSoftwareVersion: the values end up in metric names, so the broker
// rejects anything that would not be a safe identifier.
var softwareRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

// apiVersions answers an ApiVersions request whose header (up to and
// including the client id) has been consumed from b. It returns false if
// the connection must close instead.
//
// The response always goes out with response header v0 (see the caller);
// its body is encoded at the returned response's Version.
func (s *Server) apiVersions(b *kbin.Reader, version int16, log *slog.Logger) (*kmsg.ApiVersionsResponse, bool) {
	// NewPtr, not a zero value: Default sets FinalizedFeaturesEpoch to -1,
	// which is what keeps that tagged field off the wire when no decorator
	// sets it (a zero epoch would be encoded and would claim "epoch 0").
	resp := kmsg.NewPtrApiVersionsResponse()

	if version < 0 || version > apiVersionsMaxVersion {
		// KIP-511: a client probes with its newest version, so this is
		// routine, not an error. We cannot know the layout of a version
		// we do not have, so we do not parse the rest, and answer in v0,
		// the one layout every client can read, with our own ApiVersions
		// range so the client can retry at the best version we share.
		//
		// Like Kafka, the list holds only ApiVersions, not every key.
		// That matters to franz-go: on UNSUPPORTED_VERSION with a
		// one-entry list it retries at our max, but with a full list it
		// settles for the v0 answer, and so never sends its software
		// name and never learns the finalized features (v3+ only).
		log.Debug("ApiVersions version unsupported; answering v0 so the client can downgrade", "version", version)
		resp.Version = 0
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: apiVersionsKey, MinVersion: 0, MaxVersion: apiVersionsMaxVersion}}
		return resp, true
	}

	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(version)
	// The request header is flexible from v3 even though the response
	// header never is.
	if req.IsFlexible() {
		skipTags(b)
		if !b.Ok() {
			log.Warn("bad request; closing connection", "key", apiVersionsKey, "version", version, "reason", "truncated header tagged fields")
			return nil, false
		}
	}
	if err := req.ReadFrom(b.Src); err != nil {
		log.Warn("bad request; closing connection", "key", apiVersionsKey, "version", version, "reason", "body does not decode: "+err.Error())
		return nil, false
	}

	resp.SetVersion(version)
	if version >= 3 && (!softwareRe.MatchString(req.ClientSoftwareName) || !softwareRe.MatchString(req.ClientSoftwareVersion)) {
		// Kafka answers (rather than disconnecting) so the client can
		// tell the user what is wrong; like Kafka, with no ApiKeys.
		log.Info("ApiVersions with invalid client software name/version",
			"version", version, "client_software_name", req.ClientSoftwareName, "client_software_version", req.ClientSoftwareVersion)
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, true
	}

	// Cloned so a decorator that touches ApiKeys cannot corrupt the
	// advertisement for everyone else.
	resp.ApiKeys = slices.Clone(s.apiKeys)
	if s.decorate != nil {
		s.decorate(resp)
		resp.Version = version // the client decodes at the version it sent
	}
	return resp, true
}
