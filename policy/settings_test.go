package policy

import (
	"reflect"
	"strings"
	"testing"
)

// A field added to Settings without its line in the settings table would
// be refused as an unknown key: every field must have exactly one.
func TestEverySettingsFieldIsDeclaredOnceInTheSettingsTable(t *testing.T) {
	st := reflect.TypeFor[Settings]()
	if len(settings) != st.NumField() {
		t.Errorf("the settings table has %d keys, Settings has %d fields", len(settings), st.NumField())
	}
	for i := range st.NumField() {
		name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
		t.Run(name+" has a descriptor under its json name", func(t *testing.T) {
			if i >= len(settingKeys) || settingKeys[i] != name {
				t.Fatalf("settingKeys = %v, want %q at %d", settingKeys, name, i)
			}
			if k := settingByKey[name]; k == nil || k.keyName() != name {
				t.Errorf("no descriptor named %q", name)
			}
		})
	}
}

func TestInheritTakesOwnThenDefaultsThenBuiltin(t *testing.T) {
	set := func(p *int) bool { return p != nil }
	own, def, builtin := ptr(1), ptr(2), ptr(3)
	tests := []struct {
		name         string
		own, def     *int
		want         int
		fromDefaults bool
	}{
		{"a value the policy sets wins over defaults", own, def, 1, false},
		{"a value only defaults set is inherited from defaults", nil, def, 2, true},
		{"a value neither sets is the builtin default", nil, nil, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, from := inherit(tt.own, tt.def, builtin, set)
			if *got != tt.want || from != tt.fromDefaults {
				t.Errorf("inherit = %d, %v; want %d, %v", *got, from, tt.want, tt.fromDefaults)
			}
		})
	}
}

func TestMergedSettingsShareNothingWithTheBuiltinDefaults(t *testing.T) {
	eff, _ := merge(&Settings{}, &Settings{})
	eff.AllowMethods[0] = "CHANGED"
	*eff.Mode = "off"
	again, _ := merge(&Settings{}, &Settings{})
	if again.AllowMethods[0] != "DELETE" || *again.Mode != "enforce" {
		t.Errorf("a change to one policy's settings reached the builtin defaults: %v %q", again.AllowMethods, *again.Mode)
	}
}
