// Package auth reads the operator's basic-auth file (--auth-file): groups
// of users with bcrypt password hashes, which containers choose by label
// (dockroute.auth=GROUP). Each group is an htpasswd file's lines under a
// header naming it, so `htpasswd -nB alice` output can be pasted in:
//
//	# who may see the staff tools
//	[staff]
//	alice:$2y$05$...
//	bob:$2y$05$...
//
//	[ops]
//	carol:$2y$05$...
//
// Only bcrypt hashes are accepted: both Traefik and Caddy check them, and
// the older htpasswd schemes (MD5, SHA-1, crypt) are weak. A hash never
// appears in a log line or a reason.
package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/dockroute/dockroute/provider/route"
)

// User is one account: a name and its bcrypt hash.
type User struct {
	Name string
	Hash string
}

// Groups are the groups of one auth file. Nil has none.
type Groups struct {
	groups  map[string][]User
	skipped map[string]string // group → why it was refused
}

// Problem is one line or group skipped, with the reason.
type Problem struct {
	Line   int
	Group  string
	Reason string
}

func (p Problem) String() string { return fmt.Sprintf("line %d: [%s]: %s", p.Line, p.Group, p.Reason) }

// Users returns a group's users, sorted by name.
func (g *Groups) Users(group string) ([]User, bool) {
	if g == nil {
		return nil, false
	}
	us, ok := g.groups[group]
	return us, ok
}

// Names lists the groups, sorted.
func (g *Groups) Names() []string {
	if g == nil {
		return nil
	}
	var names []string
	for n := range g.groups {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Check tells why a route may not use group, or nil.
func (g *Groups) Check(group string) error {
	if g != nil {
		if why, ok := g.skipped[group]; ok {
			return fmt.Errorf("auth group %q was refused when the auth file was loaded: %s", group, why)
		}
		if _, ok := g.groups[group]; ok {
			return nil
		}
	}
	return fmt.Errorf("auth group %q is not defined: add a [%s] section to the auth file (--auth-file)", group, group)
}

// Equal tells whether two files define the same groups.
func (g *Groups) Equal(o *Groups) bool {
	a, b := g.Names(), o.Names()
	if !slices.Equal(a, b) {
		return false
	}
	for _, n := range a {
		x, _ := g.Users(n)
		y, _ := o.Users(n)
		if !slices.Equal(x, y) {
			return false
		}
	}
	return true
}

// Parse reads an auth file. A group with any bad line is refused as a
// whole (a typo must not lock one user out silently, nor let the rest
// pass unnoticed); other groups are kept.
func Parse(data []byte) (*Groups, []Problem) {
	g := &Groups{groups: map[string][]User{}, skipped: map[string]string{}}
	var problems []Problem
	group := ""
	headers := map[string]int{} // group → its header's line
	bad := map[string]bool{}
	refuse := func(line int, group, reason string) {
		problems = append(problems, Problem{Line: line, Group: group, Reason: reason})
		if _, ok := g.skipped[group]; !ok && group != "" {
			g.skipped[group] = fmt.Sprintf("line %d: %s", line, reason)
		}
		bad[group] = true
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			name, ok := strings.CutSuffix(line[1:], "]")
			name = strings.TrimSpace(name)
			group = name
			if err := route.ValidName(name); !ok || err != nil {
				refuse(n, name, "a group header is [NAME], NAME of lowercase letters, digits and inner hyphens")
				continue
			}
			if _, dup := g.groups[name]; dup {
				refuse(n, name, "the group is defined twice")
				continue
			}
			g.groups[name], headers[name] = nil, n
		case group == "":
			refuse(n, "", "a user line before any [group] header")
		default:
			u, err := parseUser(line)
			if err != nil {
				refuse(n, group, err.Error())
				continue
			}
			if slices.ContainsFunc(g.groups[group], func(x User) bool { return x.Name == u.Name }) {
				refuse(n, group, fmt.Sprintf("user %q is listed twice", u.Name))
				continue
			}
			g.groups[group] = append(g.groups[group], u)
		}
	}
	if err := sc.Err(); err != nil {
		refuse(0, group, err.Error())
	}
	for name, users := range g.groups {
		if len(users) == 0 && !bad[name] {
			refuse(headers[name], name, "the group has no users")
		}
	}
	for name := range bad {
		delete(g.groups, name)
	}
	for name := range g.groups {
		slices.SortFunc(g.groups[name], func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	}
	slices.SortFunc(problems, func(a, b Problem) int { return a.Line - b.Line })
	return g, problems
}

// parseUser reads "name:bcrypt-hash". The reason never quotes the hash.
func parseUser(line string) (User, error) {
	name, hash, ok := strings.Cut(line, ":")
	if !ok || name == "" {
		return User{}, fmt.Errorf("want user:hash, as htpasswd -nB writes")
	}
	for _, c := range name {
		if c <= ' ' || c == 0x7f || c == '"' || c == '\\' || c == '`' {
			return User{}, fmt.Errorf("user %q: no spaces, quotes or control characters in a user name", name)
		}
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil || !strings.HasPrefix(hash, "$2") {
		return User{}, fmt.Errorf("user %q: the password is not a bcrypt hash (create one with htpasswd -nB %s)", name, name)
	}
	return User{Name: name, Hash: hash}, nil
}
