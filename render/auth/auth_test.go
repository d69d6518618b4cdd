package auth

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func hash(t testing.TB, password string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParse(t *testing.T) {
	a, b := hash(t, "alice-pw"), hash(t, "bob-pw")
	md5 := "$apr1$abc$0123456789abcdefghijkl" // htpasswd -m: refused
	file := "# staff tools\n[staff]\nbob:" + b + "\nalice:" + a + "\n\n[ops]\ncarol:" + md5 +
		"\n[empty]\n[Bad Name]\nx:" + a + "\n[twice]\nd:" + a + "\nd:" + a + "\n[staff]\ne:" + a + "\n"
	g, problems := Parse([]byte("stray:" + a + "\n" + file))
	if names := strings.Join(g.Names(), " "); names != "" {
		t.Fatalf("groups %q: staff is defined twice, every other group is bad", names)
	}
	want := []string{"line 1: []: a user line before", `line 8: [ops]: user "carol": the password is not a bcrypt hash`, "line 9: [empty]: the group has no users",
		"line 10: [Bad Name]: a group header is [NAME]", `line 14: [twice]: user "d" is listed twice`, "line 15: [staff]: the group is defined twice"}
	if len(problems) != len(want) {
		t.Fatalf("problems %v", problems)
	}
	for i, p := range problems {
		if !strings.HasPrefix(p.String(), want[i]) {
			t.Errorf("problem %d = %q, want %q", i, p, want[i])
		}
		if strings.Contains(p.String(), "$2") || strings.Contains(p.String(), "$apr1") {
			t.Errorf("a reason quotes a hash: %q", p)
		}
	}

	g, problems = Parse([]byte("[staff]\nbob:" + b + "\nalice:" + a + "\n[ops]\ncarol:" + md5 + "\n"))
	if len(problems) != 1 || g.Check("staff") != nil {
		t.Fatalf("problems %v, staff: %v", problems, g.Check("staff"))
	}
	if us, _ := g.Users("staff"); len(us) != 2 || us[0].Name != "alice" || us[0].Hash != a {
		t.Errorf("staff users %+v, want alice then bob", us)
	}
	if err := g.Check("ops"); err == nil || !strings.Contains(err.Error(), `"ops" was refused when the auth file was loaded: line 5: user "carol"`) {
		t.Errorf("ops: %v", err)
	}
	if err := g.Check("nobody"); err == nil || !strings.Contains(err.Error(), "add a [nobody] section") {
		t.Errorf("nobody: %v", err)
	}
	var none *Groups
	if none.Check("staff") == nil {
		t.Error("no file, yet a group")
	}
}

// FuzzParse: whatever the file, Parse does not panic, every kept user has
// a bcrypt hash and a name that cannot break a proxy config, and no reason
// quotes a hash. Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		g, problems := Parse(data)
		for _, name := range g.Names() {
			us, _ := g.Users(name)
			for _, u := range us {
				if _, err := bcrypt.Cost([]byte(u.Hash)); err != nil || strings.ContainsAny(u.Name, "\" \n\\`:") || u.Name == "" {
					t.Fatalf("kept user %q", u.Name)
				}
			}
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			name, secret, _ := strings.Cut(strings.TrimSpace(line), ":")
			if len(secret) < 10 || strings.Contains(name, secret) {
				continue
			}
			for _, p := range problems {
				if strings.Contains(p.Reason, secret) {
					t.Fatalf("reason quotes a hash: %q", p.Reason)
				}
			}
		}
	})
}
