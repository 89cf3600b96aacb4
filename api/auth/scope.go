package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/openioc/ioc/geo"
)

// Scope maps a token's areas onto every hierarchy the deployment knows.
// Units are keyed by (hierarchy, code): codes were reused (vn-2025's 00004
// is not vn-2024's), and another country's codes can collide with ours
// (jp-2021's 28108 is Kobe's Tarumi-ku), so an area never covers a unit of
// another hierarchy because the codes match.
//
// The rule:
//   - A token's areas name units of the deployment's current hierarchy, and
//     cover their subtrees in it.
//   - A unit of an older hierarchy, one with a chain of crosswalks to the
//     current one, is covered when everything it went into is: each
//     successor of the unit (full or partial) and of every unit below it,
//     and, for a unit the crosswalk does not list (a district), the
//     successors of its nearest listed ancestor, where its own records went
//     (a district's desk counts under its province). A split commune is
//     therefore readable only by a token that covers every part of it, and
//     an old district only by one that covers its whole new province.
//     Across several crosswalks the rule applies step by step.
//   - Any other hierarchy — a foreign one, or one with no crosswalk towards
//     the current one — is covered by unrestricted tokens only.
//
// Concurrency: safe for concurrent use. The units of an older hierarchy
// covered by one set of areas are computed once and cached (at most
// MaxCached sets; the cache is emptied when full).
type Scope struct {
	current *geo.Hierarchy
	// next is, for each older hierarchy with a path to the current one,
	// the crosswalk of the first step on it.
	next map[string]*geo.Crosswalk

	mu    sync.Mutex
	cache map[scopeKey]map[string]bool
}

type scopeKey struct{ hierarchy, areas string }

// MaxCached bounds the sets of older units a Scope keeps.
const MaxCached = 512

// NewScope returns the scope rule over reg with current as the deployment's
// hierarchy.
func NewScope(reg *geo.Registry, current string) (*Scope, error) {
	if reg == nil {
		return nil, errors.New("scope needs the registry of hierarchies")
	}
	h, ok := reg.Hierarchy(current)
	if !ok {
		return nil, fmt.Errorf("scope: unknown hierarchy %q", current)
	}
	s := &Scope{current: h, next: map[string]*geo.Crosswalk{}, cache: map[scopeKey]map[string]bool{}}
	// Walk the crosswalks back from the current hierarchy: the first found
	// is the shortest path from each older one.
	reached := map[string]bool{current: true}
	frontier := []string{current}
	for len(frontier) > 0 {
		var more []string
		for _, to := range frontier {
			for _, cw := range reg.Crosswalks() {
				from := cw.From().Name()
				if cw.To().Name() == to && !reached[from] {
					reached[from] = true
					s.next[from] = cw
					more = append(more, from)
				}
			}
		}
		slices.Sort(more)
		frontier = more
	}
	return s, nil
}

// Current is the deployment's hierarchy, whose units tokens name.
func (s *Scope) Current() *geo.Hierarchy { return s.current }

// Reachable reports whether units of hierarchy can be covered by a token
// restricted to some areas: the current one, or an older one with
// crosswalks to it.
func (s *Scope) Reachable(hierarchy string) bool {
	_, older := s.next[hierarchy]
	return hierarchy == s.current.Name() || older
}

// Covers reports whether the subtrees of areas (units of the current
// hierarchy; "*" for all) cover unit code of hierarchy.
func (s *Scope) Covers(areas []string, hierarchy, code string) bool {
	if slices.Contains(areas, AllAreas) {
		return true
	}
	if hierarchy == s.current.Name() {
		return s.inCurrent(areas, code)
	}
	if _, ok := s.next[hierarchy]; !ok {
		return false
	}
	return s.covered(areas, hierarchy)[code]
}

func (s *Scope) inCurrent(areas []string, code string) bool {
	if _, ok := s.current.Unit(code); !ok {
		return false
	}
	for _, a := range areas {
		if s.current.Contains(a, code) {
			return true
		}
	}
	return false
}

// covered returns the units of older hierarchy name that areas cover.
func (s *Scope) covered(areas []string, name string) map[string]bool {
	sorted := slices.Clone(areas)
	slices.Sort(sorted)
	key := scopeKey{name, strings.Join(sorted, ",")}
	s.mu.Lock()
	set, ok := s.cache[key]
	s.mu.Unlock()
	if ok {
		return set
	}
	set = s.compute(areas, name)
	s.mu.Lock()
	if len(s.cache) >= MaxCached {
		clear(s.cache)
	}
	s.cache[key] = set
	s.mu.Unlock()
	return set
}

func (s *Scope) compute(areas []string, name string) map[string]bool {
	cw := s.next[name]
	var nextCovers func(code string) bool
	if to := cw.To().Name(); to == s.current.Name() {
		nextCovers = func(code string) bool { return s.inCurrent(areas, code) }
	} else {
		later := s.covered(areas, to)
		nextCovers = func(code string) bool { return later[code] }
	}
	h := cw.From()
	// own says whether the records filed under code itself went only into
	// covered units.
	own := func(code string) bool {
		for cur := code; cur != ""; {
			if es := cw.Successors(cur); len(es) > 0 {
				for _, e := range es {
					if !nextCovers(e.New) {
						return false
					}
				}
				return true
			}
			u, ok := h.Unit(cur)
			if !ok {
				return false
			}
			cur = u.Parent
		}
		return false // goes nowhere: nobody restricted may read it
	}
	out := map[string]bool{}
	for _, root := range h.Roots() {
		order := h.Subtree(root.Code) // parents before children
		for i := len(order) - 1; i >= 0; i-- {
			code := order[i]
			ok := own(code)
			for _, child := range h.ChildCodes(code) {
				ok = ok && out[child]
			}
			if ok {
				out[code] = true
			}
		}
	}
	return out
}
