package pdclient

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDetails is what the server says about a failed call.
type ErrorDetails struct {
	Code    codes.Code
	Message string
	// Reason is the stable machine-readable category of google.rpc.ErrorInfo
	// (INVALID_DEFINITION, NAMESPACE_NOT_FOUND, ...); "" when the status has none.
	Reason string
	// Field is the request field at fault ("" when none is named).
	Field string
	// Retryable: the same call may simply be sent again later (UNAVAILABLE, the one code the
	// client's own policy retries).
	Retryable bool
}

// Details reads the code, message, reason, field and retryability out of a call's error.
// An error that is no gRPC status reads as codes.Unknown.
func Details(err error) ErrorDetails {
	st := status.Convert(err)
	details := ErrorDetails{Code: st.Code(), Message: st.Message(), Retryable: st.Code() == codes.Unavailable}
	for _, detail := range st.Details() {
		switch detail := detail.(type) {
		case *errdetails.ErrorInfo:
			details.Reason = detail.GetReason()
			if field := detail.GetMetadata()["field"]; field != "" {
				details.Field = field
			}
		case *errdetails.BadRequest:
			if violations := detail.GetFieldViolations(); details.Field == "" && len(violations) > 0 {
				details.Field = violations[0].GetField()
			}
		}
	}
	return details
}
