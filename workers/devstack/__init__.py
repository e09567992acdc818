"""The local development stack: the embedded Kafka broker and the eventguard processes
that `eventguard run`, the benchmarks and the tests start. Never imported by the worker
or the ingest, which run on any Kafka."""
