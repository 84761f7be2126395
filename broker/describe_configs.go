package broker

// DescribeConfigs (key 32), versions 0–4: the configs of topics and of this broker, answered from the
// broker's own image. v1 added each config's Source and, on request, its synonyms (v0 has IsDefault
// instead); v2 changes only throttling; v3 adds each config's type and, on request, its
// documentation; v4 is flexible.
//
// metadatalog.Image.DescribeConfigs resolves values and sources as this broker sees them, its own
// dynamic settings included; this file only turns the answer into Kafka's wire form. For the BROKER
// resource of this broker's id Kafka also lists the broker's static configuration; here the known
// dynamic broker configs are listed with their effective values, since a node's configuration file
// holds none of them. Another broker's id is refused, as Kafka refuses it: clients ask each broker
// about itself.

import (
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const describeConfigsMaxVersion = 4

func describeConfigsResponse(img *metadatalog.Image, self int32, req *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		answer := img.DescribeConfigs(self, metadatalog.ConfigQuery{
			Type: metadatapb.ConfigResourceType(r.ResourceType), Name: r.ResourceName, Keys: r.ConfigNames})
		resp.Resources = append(resp.Resources, describedConfigs(req, r, answer))
	}
	return resp
}

// describedConfigs turns the answer for one resource into its wire form.
func describedConfigs(req *kmsg.DescribeConfigsRequest, r kmsg.DescribeConfigsRequestResource, answer metadatalog.ConfigAnswer) kmsg.DescribeConfigsResponseResource {
	rr := kmsg.NewDescribeConfigsResponseResource()
	rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
	switch answer.Refusal {
	case metadatalog.ConfigRefusalUnknownTopic:
		rr.ErrorCode, rr.ErrorMessage = kerr.UnknownTopicOrPartition.Code, &answer.Message
		return rr
	case metadatalog.ConfigRefusalInvalidRequest:
		rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, &answer.Message
		return rr
	}
	rr.Configs = make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(answer.Configs))
	for _, v := range answer.Configs {
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name, rc.Value = v.Name, kmsg.StringPtr(v.Value)
		rc.Source, rc.ConfigType = kmsg.ConfigSource(v.Source), kmsg.ConfigType(v.Type)
		// v0's IsDefault means "not set anywhere"; Kafka's brokers leave it false.
		rc.IsDefault = v.Source == metadatalog.ConfigSourceDefault
		if req.IncludeSynonyms {
			for _, s := range v.Synonyms {
				rs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				rs.Name, rs.Value, rs.Source = s.Name, kmsg.StringPtr(s.Value), kmsg.ConfigSource(s.Source)
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, rs)
			}
		}
		if req.IncludeDocumentation && v.Doc != "" {
			rc.Documentation = kmsg.StringPtr(v.Doc)
		}
		rr.Configs = append(rr.Configs, rc)
	}
	return rr
}
