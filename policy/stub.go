package policy

type compiled struct{}

func decode(file string, data []byte) (*File, []Problem) { return &File{}, nil }
func compile(file string, f *File, p []Problem) ([]Policy, []*compiled, []Problem) {
	return nil, nil, p
}
func sortProblems([]Problem) {}

// Decide judges the request headers.
func (s *Set) Decide(r *Request) Decision { return Decision{} }

// Respond fills e with what to do to the service's response headers.
func (d *Decision) Respond(up *Upstream, e *Edit) {}
