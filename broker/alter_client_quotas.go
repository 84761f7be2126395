package broker

// AlterClientQuotas (key 49), versions 0–1, is forwarded to the active controller (forward.go), which
// validates the alterations and writes them; these are the answers forwarding needs of it.

import "github.com/twmb/franz-go/pkg/kmsg"

func alterClientQuotasRefused(r kmsg.Response) (bool, string) {
	return refusedAsStandby(r.(*kmsg.AlterClientQuotasResponse).Entries,
		func(e kmsg.AlterClientQuotasResponseEntry) int16 { return e.ErrorCode }, func(e kmsg.AlterClientQuotasResponseEntry) *string { return e.ErrorMessage })
}

// alterClientQuotasFailed answers every entry, naming its entity as the request did.
func alterClientQuotasFailed(r kmsg.Request, code int16, msg string) kmsg.Response {
	req := r.(*kmsg.AlterClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for _, e := range req.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		re.ErrorCode, re.ErrorMessage = code, &msg
		for _, p := range e.Entity {
			rp := kmsg.NewAlterClientQuotasResponseEntryEntity()
			rp.Type, rp.Name = p.Type, p.Name
			re.Entity = append(re.Entity, rp)
		}
		resp.Entries = append(resp.Entries, re)
	}
	return resp
}
