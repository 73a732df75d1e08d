"""gRPC client side: the command line's calls and the rich error details of a failed call.

Knows the service only through its generated stubs, as any other client does.
"""
