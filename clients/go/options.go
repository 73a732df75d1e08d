package pdclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// TLSCredentials are TLS settings from PEM files: caFile ("" for the system's roots) verifies
// the server; certFile and keyFile (both or neither) are the client's own certificate for
// mutual TLS.
func TLSCredentials(caFile, certFile, keyFile string) (credentials.TransportCredentials, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("partition-deps: TLS CA: %w", err)
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("partition-deps: TLS CA %s holds no PEM certificate", caFile)
		}
	}
	if certFile != "" || keyFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("partition-deps: TLS client certificate: %w", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

// bearer sends one token on every call, over TLS or plaintext alike.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// metadataCarrier lets the OpenTelemetry propagator write into outgoing gRPC metadata.
type metadataCarrier struct{ md metadata.MD }

func (c metadataCarrier) Get(key string) string {
	if values := c.md.Get(key); len(values) > 0 {
		return values[0]
	}
	return ""
}
func (c metadataCarrier) Set(key, value string) { c.md.Set(key, value) }
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c.md))
	for key := range c.md {
		keys = append(keys, key)
	}
	return keys
}

// withTrace adds the trace context of ctx (traceparent, ... as the application's global
// propagator writes it; nothing when none is set) to the outgoing metadata.
func withTrace(ctx context.Context) context.Context {
	md := metadata.MD{}
	otel.GetTextMapPropagator().Inject(ctx, metadataCarrier{md})
	for key, values := range md {
		for _, value := range values {
			ctx = metadata.AppendToOutgoingContext(ctx, key, value)
		}
	}
	return ctx
}

func propagateTrace(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(withTrace(ctx), method, req, reply, cc, opts...)
}

func propagateTraceStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(withTrace(ctx), desc, cc, method, opts...)
}
