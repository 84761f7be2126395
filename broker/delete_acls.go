package broker

// DeleteAcls (key 31), versions 0–3, is forwarded to the active controller (forward.go), which
// removes what each filter matches; these are the answers forwarding needs of it.

import "github.com/twmb/franz-go/pkg/kmsg"

func deleteACLsRefused(r kmsg.Response) (bool, string) {
	return refusedAsStandby(r.(*kmsg.DeleteACLsResponse).Results,
		func(t kmsg.DeleteACLsResponseResult) int16 { return t.ErrorCode }, func(t kmsg.DeleteACLsResponseResult) *string { return t.ErrorMessage })
}

func deleteACLsFailed(r kmsg.Request, code int16, msg string) kmsg.Response {
	req := r.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range req.Filters {
		rr := kmsg.NewDeleteACLsResponseResult()
		rr.ErrorCode, rr.ErrorMessage = code, &msg
		resp.Results = append(resp.Results, rr)
	}
	return resp
}
