package policy

import "testing"

func TestDenialReasonsAreExactlyTheOnesDecideDeniesWith(t *testing.T) {
	t.Parallel()
	denials := map[Reason]bool{
		ReasonOriginNotAllowed: true, ReasonOriginTooLong: true, ReasonOriginInvalid: true,
		ReasonMultipleOrigins: true, ReasonMethodInvalid: true, ReasonMethodNotAllowed: true,
		ReasonHeaderInvalid: true, ReasonHeaderNotAllowed: true, ReasonRequestTooLarge: true,
	}
	for _, r := range Reasons() {
		if got := r.Denial(); got != denials[r] {
			t.Errorf("%s.Denial() = %v, want %v", r, got, denials[r])
		}
	}
}
