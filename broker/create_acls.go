package broker

// CreateAcls (key 30), versions 0–3, is forwarded to the active controller (forward.go), which
// validates the creations and writes them; these are the answers forwarding needs of it.

import "github.com/twmb/franz-go/pkg/kmsg"

func createACLsRefused(r kmsg.Response) (bool, string) {
	return refusedAsStandby(r.(*kmsg.CreateACLsResponse).Results,
		func(t kmsg.CreateACLsResponseResult) int16 { return t.ErrorCode }, func(t kmsg.CreateACLsResponseResult) *string { return t.ErrorMessage })
}

func createACLsFailed(r kmsg.Request, code int16, msg string) kmsg.Response {
	req := r.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	for range req.Creations {
		rr := kmsg.NewCreateACLsResponseResult()
		rr.ErrorCode, rr.ErrorMessage = code, &msg
		resp.Results = append(resp.Results, rr)
	}
	return resp
}
