// Package testutil is the scaffolding every test suite shares: the one
// place test time limits come from ([Patience]), a locked buffer for logs
// written from several goroutines, polling, reading Prometheus metrics,
// and a test certificate authority. It imports nothing of corsproc,
// so that any package's internal tests may use it without an import cycle.
package testutil
