package testutil

import _ "embed"

// Policy is testdata/policy.yaml: one policy of every kind the processor
// must handle, shared by the extproc and end-to-end suites so that their
// expectations are about the same file.
//
//go:embed testdata/policy.yaml
var Policy string
