package dataset

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Formula is a derived indicator's arithmetic over other indicators:
// numbers, names of indicators (a measure of the same dataset, e.g.
// "pupils"; another dataset's, e.g. "population.residents"; or one of the
// catalog, e.g. "dossiers_received"), + - * / and parentheses. Each name
// stands for that indicator's figure of the unit and period, computed from
// summed parts as the indicator's own answers are, so a formula never
// averages rates.
type Formula struct {
	text  string
	root  *node
	names []string
}

type node struct {
	op    byte // 0: a number or name; + - * /; 'n': negation
	num   float64
	name  string
	l, r  *node
	start int // where in the text, for errors
}

// FormulaError is a formula that does not parse, at a byte offset.
type FormulaError struct {
	Pos int
	Msg string
}

func (e *FormulaError) Error() string { return fmt.Sprintf("at character %d: %s", e.Pos+1, e.Msg) }

// MaxFormula bounds a formula's length.
const MaxFormula = 1000

// ParseFormula reads a formula.
func ParseFormula(text string) (*Formula, error) {
	if len(text) > MaxFormula {
		return nil, &FormulaError{0, fmt.Sprintf("the formula is %d characters long: at most %d", len(text), MaxFormula)}
	}
	p := &formulaParser{s: text}
	p.skip()
	if p.i == len(p.s) {
		return nil, &FormulaError{0, "the formula is empty: write e.g. dossiers_received / population.residents * 1000"}
	}
	root, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.s) {
		return nil, &FormulaError{p.i, fmt.Sprintf("unexpected %q: an operator (+ - * /) or the end was expected", p.s[p.i])}
	}
	f := &Formula{text: text, root: root}
	var walk func(n *node)
	walk = func(n *node) {
		if n == nil {
			return
		}
		if n.name != "" && !slices.Contains(f.names, n.name) {
			f.names = append(f.names, n.name)
		}
		walk(n.l)
		walk(n.r)
	}
	walk(root)
	return f, nil
}

// String is the formula as written.
func (f *Formula) String() string { return f.text }

// Names lists the indicators the formula reads, each once, in order of
// appearance.
func (f *Formula) Names() []string { return slices.Clone(f.names) }

// NameAt returns where name first appears, for errors.
func (f *Formula) NameAt(name string) int {
	var at func(n *node) int
	at = func(n *node) int {
		if n == nil {
			return -1
		}
		if n.name == name {
			return n.start
		}
		if i := at(n.l); i >= 0 {
			return i
		}
		return at(n.r)
	}
	return at(f.root)
}

// Eval computes the formula with each name's figure from get; false when
// a figure is missing or a division is by zero (a unit without a
// denominator has no value, not an infinite one).
func (f *Formula) Eval(get func(name string) (float64, bool)) (float64, bool) {
	var eval func(n *node) (float64, bool)
	eval = func(n *node) (float64, bool) {
		switch n.op {
		case 0:
			if n.name != "" {
				return get(n.name)
			}
			return n.num, true
		case 'n':
			v, ok := eval(n.l)
			return -v, ok
		}
		a, ok := eval(n.l)
		if !ok {
			return 0, false
		}
		b, ok := eval(n.r)
		if !ok {
			return 0, false
		}
		switch n.op {
		case '+':
			return a + b, true
		case '-':
			return a - b, true
		case '*':
			return a * b, true
		}
		if b == 0 {
			return 0, false
		}
		return a / b, true
	}
	v, ok := eval(f.root)
	if !ok || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

type formulaParser struct {
	s     string
	i     int
	depth int
}

func (p *formulaParser) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

// precedence of the binary operators.
func precedence(c byte) int {
	switch c {
	case '+', '-':
		return 1
	case '*', '/':
		return 2
	}
	return 0
}

// expr reads operands joined by operators of at least min's precedence,
// left to right.
func (p *formulaParser) expr(min int) (*node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		p.skip()
		if p.i >= len(p.s) {
			return l, nil
		}
		op := p.s[p.i]
		prec := precedence(op)
		if prec == 0 || prec < min {
			return l, nil
		}
		at := p.i
		p.i++
		r, err := p.expr(prec + 1)
		if err != nil {
			return nil, err
		}
		l = &node{op: op, l: l, r: r, start: at}
	}
}

func (p *formulaParser) unary() (*node, error) {
	p.skip()
	if p.i >= len(p.s) {
		return nil, &FormulaError{p.i, "the formula ends where a number, a name or ( was expected"}
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 100 {
		return nil, &FormulaError{p.i, "the formula nests too deep"}
	}
	c := p.s[p.i]
	start := p.i
	switch {
	case c == '-':
		p.i++
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &node{op: 'n', l: n, start: start}, nil
	case c == '(':
		p.i++
		n, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, &FormulaError{p.i, fmt.Sprintf("the ( at character %d is not closed", start+1)}
		}
		p.i++
		return n, nil
	case c >= '0' && c <= '9' || c == '.':
		for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.') {
			p.i++
		}
		v, err := strconv.ParseFloat(p.s[start:p.i], 64)
		if err != nil {
			return nil, &FormulaError{start, fmt.Sprintf("%q is not a number", p.s[start:p.i])}
		}
		return &node{num: v, start: start}, nil
	case c >= 'a' && c <= 'z':
		for p.i < len(p.s) && (p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '_' || p.s[p.i] == '.') {
			p.i++
		}
		name := p.s[start:p.i]
		if strings.HasSuffix(name, ".") || strings.Count(name, ".") > 1 || strings.Contains(name, "._") {
			return nil, &FormulaError{start, fmt.Sprintf("%q is not a name: an indicator of the catalog (dossiers_received), a measure of this dataset (pupils) or of another (population.residents)", name)}
		}
		return &node{name: name, start: start}, nil
	}
	return nil, &FormulaError{start, fmt.Sprintf("unexpected %q: a number, a name or ( was expected", c)}
}
