package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/gofiber/fiber/v2"
	"gopkg.in/yaml.v3"

	"github.com/openioc/ioc/docs"
)

// openAPI answers GET /api/v1/openapi.json: docs/openapi.yaml as JSON,
// converted once when the routes are built. No token is needed. A document
// that does not convert (a broken build) is logged and answered with 500.
func (s *Server) openAPI() fiber.Handler {
	body, err := openAPIJSON(docs.OpenAPI)
	if err != nil {
		s.logger.Error("the embedded OpenAPI document does not convert to JSON", "err", err)
		return func(*fiber.Ctx) error {
			return fmt.Errorf("serve openapi.json: %w", err)
		}
	}
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return c.Send(body)
	}
}

// openAPIJSON converts a YAML document to JSON. It walks the parsed nodes
// rather than decoding into any: mapping keys stay the text they are
// written as (an unquoted 200 is the key "200", not a number), timestamps
// stay the text they are written as (2026-11-22 is not turned into a
// midnight UTC time), aliases and merge keys are followed, and duplicate
// keys or numbers JSON cannot carry are refused.
func openAPIJSON(doc []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	v, err := jsonValue(&n, "$", 0)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// maxDepth bounds nesting, aliases included, so that a self-referring
// alias cannot recurse forever.
const maxDepth = 200

// jsonValue turns a YAML node into a value encoding/json takes; at locates
// the node in errors.
func jsonValue(n *yaml.Node, at string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: nested deeper than %d levels", at, maxDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return jsonValue(n.Content[0], at, depth+1)
	case yaml.AliasNode:
		return jsonValue(n.Alias, at, depth+1)
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, e := range n.Content {
			v, err := jsonValue(e, fmt.Sprintf("%s[%d]", at, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case yaml.MappingNode:
		return jsonObject(n, at, depth)
	case yaml.ScalarNode:
		return jsonScalar(n, at)
	default:
		return nil, fmt.Errorf("%s: line %d: unexpected YAML node", at, n.Line)
	}
}

// jsonObject converts a mapping. Keys written in the mapping win over
// those it takes from merge keys (<<), and earlier merged mappings over
// later ones, as YAML has it.
func jsonObject(n *yaml.Node, at string, depth int) (map[string]any, error) {
	out := make(map[string]any, len(n.Content)/2)
	var merged []map[string]any
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			from, err := jsonValue(v, at+".<<", depth+1)
			if err != nil {
				return nil, err
			}
			switch from := from.(type) {
			case map[string]any:
				merged = append(merged, from)
			case []any:
				for _, f := range from {
					m, ok := f.(map[string]any)
					if !ok {
						return nil, fmt.Errorf("%s: line %d: a merge key takes mappings only", at, k.Line)
					}
					merged = append(merged, m)
				}
			default:
				return nil, fmt.Errorf("%s: line %d: a merge key takes mappings only", at, k.Line)
			}
			continue
		}
		for k.Kind == yaml.AliasNode {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s: line %d: a mapping key must be a scalar to become a JSON key", at, k.Line)
		}
		key := k.Value
		if k.ShortTag() == "!!null" && (key == "~" || key == "") {
			key = "null"
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%s: line %d: key %q appears twice", at, k.Line, key)
		}
		e, err := jsonValue(v, at+"."+key, depth+1)
		if err != nil {
			return nil, err
		}
		out[key] = e
	}
	for _, m := range merged {
		for k, v := range m {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return out, nil
}

// jsonScalar converts a scalar by its resolved tag; timestamps and
// unknown tags keep their text.
func jsonScalar(n *yaml.Node, at string) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", at, n.Line, err)
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return i, nil
		}
		var u uint64
		if err := n.Decode(&u); err != nil {
			return nil, fmt.Errorf("%s: line %d: integer %s does not fit in 64 bits", at, n.Line, n.Value)
		}
		return u, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", at, n.Line, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%s: line %d: %s has no JSON form", at, n.Line, n.Value)
		}
		return f, nil
	default: // !!str, !!timestamp, !!binary and custom tags
		return n.Value, nil
	}
}
