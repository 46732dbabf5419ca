// Package e2e holds corsproc's end-to-end tests: a browser-like HTTP client
// calls the envoytest stand-in, which drives the real `corsproc serve`
// binary over gRPC, in front of an httptest upstream. They cover every
// decision of docs/contract.md §3 and the process's life: hot reload, SIGHUP, graceful
// shutdown with requests in flight, TLS and mTLS, health, metrics and the
// admin endpoints. Only tests live here.
package e2e
