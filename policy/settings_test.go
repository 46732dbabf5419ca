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

// DeepCopy goes through the settings table, so a key added there is
// copied too; a copy that shared a list or pointer with its source would
// let a Kubernetes informer's cached object be changed through it.
func TestDeepCopyCopiesEveryKeySharingNothing(t *testing.T) {
	var src Settings
	rv := reflect.ValueOf(&src).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		switch f.Kind() {
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"x"}))
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		default:
			t.Fatalf("field %s has kind %s: teach this test to fill it", rv.Type().Field(i).Name, f.Kind())
		}
	}
	cp := src.DeepCopy()
	if !reflect.DeepEqual(*cp, src) {
		t.Fatalf("DeepCopy = %+v, want %+v", *cp, src)
	}
	cv := reflect.ValueOf(cp).Elem()
	for i := range rv.NumField() {
		name := rv.Type().Field(i).Name
		t.Run(name+" is not shared with the source", func(t *testing.T) {
			if rv.Field(i).UnsafePointer() == cv.Field(i).UnsafePointer() {
				t.Errorf("%s shares its storage with the source", name)
			}
		})
	}
	if (*Settings)(nil).DeepCopy() != nil {
		t.Error("DeepCopy of nil is not nil")
	}
}
