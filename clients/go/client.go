// Package pdclient is a thin Go client for the partition-deps gRPC service.
//
// It dials with sensible defaults and exposes the generated service clients unchanged:
//
//	c, err := pdclient.Dial("127.0.0.1:50051")
//	if err != nil { ... }
//	defer c.Close()
//	resp, err := c.Queries.GetUpstreamPartitions(ctx, &pdv1.GetUpstreamPartitionsRequest{...})
//
// What Dial adds, through the gRPC service config (so other gRPC clients can copy it):
//   - a default deadline per call (Options.Timeout, default 10s) when the caller's context has
//     none or a later one;
//   - retries of UNAVAILABLE only (the server answers UNAVAILABLE while its database is down,
//     before doing any work) with exponential backoff (100ms doubling up to 2s), up to
//     Options.MaxAttempts attempts in all (default 4);
//   - the round_robin load-balancing policy: with a target that resolves to several servers,
//     such as "dns:///partition-deps.ns.svc:50051" naming a headless Kubernetes service, calls
//     are spread over every server that is up, and a server that goes away is skipped.
//
// Event reports are safe to retry: every event carries an idempotency key. Beyond that:
// Options.Token (a bearer token on every call), TLSCredentials (TLS and mutual TLS), the trace
// context of each call's ctx sent along (the global OpenTelemetry propagator), builders for
// every event kind, iterators that follow page tokens (Pages, Assets, ...) and Details, which
// reads the reason, field and retryability out of an error.
package pdclient

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pdv1 "partition-deps/clients/go/gen/partitiondeps/v1"
)

// Services whose calls get the default deadline and the retry policy.
var services = []string{
	"partitiondeps.v1.DefinitionsService",
	"partitiondeps.v1.EventsService",
	"partitiondeps.v1.QueriesService",
	"partitiondeps.v1.DiagnosticsService",
	"partitiondeps.v1.StalenessService",
}

// Options tune Dial. The zero value of each field means its default.
type Options struct {
	// Timeout is the deadline of each call whose context has none (default 10s).
	Timeout time.Duration
	// MaxAttempts counts the first attempt and the retries of UNAVAILABLE (default 4; 1 turns
	// retries off; gRPC caps it at 5).
	MaxAttempts int
	// InitialBackoff is the first retry's upper bound of backoff (default 100ms); it doubles per
	// attempt up to MaxBackoff (default 2s). gRPC draws each delay at random below the bound.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Credentials for the connection (default: plaintext, for loopback and sidecars); see
	// TLSCredentials.
	Credentials credentials.TransportCredentials
	// Token is a bearer token sent as "authorization: Bearer <token>" on every call (default:
	// none). It is sent over plaintext too: a sidecar on loopback needs no TLS.
	Token string
	// DialOptions are appended after the client's own (interceptors, message sizes, ...).
	DialOptions []grpc.DialOption
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 4
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.Credentials == nil {
		o.Credentials = insecure.NewCredentials()
	}
	return o
}

// ServiceConfig returns the gRPC service config (JSON) that Dial installs for these options.
func ServiceConfig(o Options) (string, error) {
	o = o.withDefaults()
	type name struct {
		Service string `json:"service"`
	}
	type retryPolicy struct {
		MaxAttempts          int      `json:"maxAttempts"`
		InitialBackoff       string   `json:"initialBackoff"`
		MaxBackoff           string   `json:"maxBackoff"`
		BackoffMultiplier    float64  `json:"backoffMultiplier"`
		RetryableStatusCodes []string `json:"retryableStatusCodes"`
	}
	type methodConfig struct {
		Name        []name       `json:"name"`
		Timeout     string       `json:"timeout"`
		RetryPolicy *retryPolicy `json:"retryPolicy,omitempty"`
	}
	method := methodConfig{Timeout: seconds(o.Timeout)}
	for _, service := range services {
		method.Name = append(method.Name, name{Service: service})
	}
	if o.MaxAttempts > 1 {
		method.RetryPolicy = &retryPolicy{
			MaxAttempts:          o.MaxAttempts,
			InitialBackoff:       seconds(o.InitialBackoff),
			MaxBackoff:           seconds(o.MaxBackoff),
			BackoffMultiplier:    2,
			RetryableStatusCodes: []string{"UNAVAILABLE"},
		}
	}
	config, err := json.Marshal(map[string]any{
		"methodConfig":        []methodConfig{method},
		"loadBalancingConfig": []map[string]any{{"round_robin": map[string]any{}}},
	})
	return string(config), err
}

// seconds formats a duration the way the service config's JSON mapping wants it ("1.5s").
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.9gs", d.Seconds())
}

// Client holds one connection and the generated clients of every service on it.
type Client struct {
	conn        *grpc.ClientConn
	Definitions pdv1.DefinitionsServiceClient
	Events      pdv1.EventsServiceClient
	Queries     pdv1.QueriesServiceClient
	Diagnostics pdv1.DiagnosticsServiceClient
	Staleness   pdv1.StalenessServiceClient
	Health      healthpb.HealthClient
}

// Dial creates a client for target ("host:port" or any gRPC target such as "dns:///svc:50051").
// Like grpc.NewClient it does not connect until the first call.
func Dial(target string, options ...Options) (*Client, error) {
	var o Options
	if len(options) > 0 {
		o = options[0]
	}
	o = o.withDefaults()
	config, err := ServiceConfig(o)
	if err != nil {
		return nil, err
	}
	dialOptions := []grpc.DialOption{
		grpc.WithTransportCredentials(o.Credentials),
		grpc.WithDefaultServiceConfig(config),
		grpc.WithChainUnaryInterceptor(propagateTrace),
		grpc.WithChainStreamInterceptor(propagateTraceStream),
	}
	if o.Token != "" {
		dialOptions = append(dialOptions, grpc.WithPerRPCCredentials(bearer(o.Token)))
	}
	dialOptions = append(dialOptions, o.DialOptions...)
	conn, err := grpc.NewClient(target, dialOptions...)
	if err != nil {
		return nil, fmt.Errorf("partition-deps: dial %s: %w", target, err)
	}
	return &Client{
		conn:        conn,
		Definitions: pdv1.NewDefinitionsServiceClient(conn),
		Events:      pdv1.NewEventsServiceClient(conn),
		Queries:     pdv1.NewQueriesServiceClient(conn),
		Diagnostics: pdv1.NewDiagnosticsServiceClient(conn),
		Staleness:   pdv1.NewStalenessServiceClient(conn),
		Health:      healthpb.NewHealthClient(conn),
	}, nil
}

// Conn is the underlying connection (for other stubs on the same server).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }
