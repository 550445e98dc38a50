"""The cadence.v1 gRPC service (``cadence serve --grpc-port``); stubs come from protos/."""
