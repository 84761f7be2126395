package metadatalog

// The DescribeConfigs answer (Kafka API key 32, versions 0–4) built from an image, in Kafka's wire
// form. Brokers and controllers both serve DescribeConfigs from their own image, so the conversion of
// Image.DescribeConfigs' answers lives here, beside the image, once. v1 added each config's Source and,
// on request, its synonyms (v0 has IsDefault instead); v3 each config's type and, on request, its
// documentation.

import (
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigsResponse answers req from img as node self sees it.
func (img *Image) DescribeConfigsResponse(self int32, req *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		answer := img.DescribeConfigs(self, ConfigQuery{
			Type: metadatapb.ConfigResourceType(r.ResourceType), Name: r.ResourceName, Keys: r.ConfigNames})
		resp.Resources = append(resp.Resources, describedConfigs(req, r, answer))
	}
	return resp
}

// describedConfigs turns the answer for one resource into its wire form.
func describedConfigs(req *kmsg.DescribeConfigsRequest, r kmsg.DescribeConfigsRequestResource, answer ConfigAnswer) kmsg.DescribeConfigsResponseResource {
	rr := kmsg.NewDescribeConfigsResponseResource()
	rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
	switch answer.Refusal {
	case ConfigRefusalUnknownTopic:
		rr.ErrorCode, rr.ErrorMessage = kerr.UnknownTopicOrPartition.Code, &answer.Message
		return rr
	case ConfigRefusalInvalidRequest:
		rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, &answer.Message
		return rr
	}
	rr.Configs = make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(answer.Configs))
	for _, v := range answer.Configs {
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name, rc.Value = v.Name, kmsg.StringPtr(v.Value)
		rc.Source, rc.ConfigType = kmsg.ConfigSource(v.Source), kmsg.ConfigType(v.Type)
		// v0's IsDefault means "not set anywhere"; Kafka's brokers leave it false.
		rc.IsDefault = v.Source == ConfigSourceDefault
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
