"""HTTP beside gRPC: JSON over the Connect protocol and a read-only status page.

Everything here reaches the service through a gRPC channel to the server's own loopback
socket, so each call passes the same interceptors (metrics, auth), limits, validation and
deadlines as any gRPC call.
"""
