package hub

import (
	"encoding/json"
	"strconv"
	"sync"

	"github.com/fasthttp/websocket"

	"github.com/openioc/ioc/internal/bus"
)

// kind is how a frame is sent: the same message goes out as a snapshot to
// a new subscriber and as an update to the others.
type kind uint8

const (
	kindUpdate      kind = iota // state: whole payload; stream: one message
	kindSnapshot                // whole state, or a stream's recent messages from storage
	kindGapSnapshot             // a stream snapshot for a resume the history could not serve
	kindDelta                   // state: the part that changed since the frame's base
	kindCurrent                 // state: a resume whose version is the current one; no data
	nKinds
)

var kindNames = [nKinds]string{"update", "snapshot", "snapshot", "delta", "current"}

// frame is one message of a topic, encoded once per kind it is sent as and
// written as the same bytes to every subscriber: the hub never parses or
// re-encodes a payload.
type frame struct {
	topic   string
	version string // state topics
	base    string // with delta: the version delta applies to
	epoch   string // stream topics
	offset  uint64
	payload []byte
	delta   []byte

	enc [nKinds]encoded
}

type encoded struct {
	once sync.Once
	data []byte
	pm   *websocket.PreparedMessage
}

func newFrame(m bus.Message) *frame {
	return &frame{topic: m.Topic, version: m.Version, base: m.Base, epoch: m.Epoch, offset: m.Offset,
		payload: m.Payload, delta: m.Delta}
}

func (f *frame) encoded(k kind) *encoded {
	e := &f.enc[k]
	e.once.Do(func() {
		e.data = f.envelope(k)
		// The websocket frame is built once too, on the first write.
		e.pm, _ = websocket.NewPreparedMessage(websocket.TextMessage, e.data)
	})
	return e
}

// bytes is the message as k, JSON.
func (f *frame) bytes(k kind) []byte { return f.encoded(k).data }

// envelope builds the server message around the already-encoded payload.
func (f *frame) envelope(k kind) []byte {
	t, _ := json.Marshal(f.topic)
	b := make([]byte, 0, len(f.payload)+len(f.delta)+len(t)+2*bus.VersionLen+80)
	b = append(b, `{"type":"`...)
	b = append(b, kindNames[k]...)
	b = append(b, `","topic":`...)
	b = append(b, t...)
	if f.version != "" {
		// Versions and epochs are hexadecimal digits: nothing to escape.
		b = append(b, `,"version":"`...)
		b = append(b, f.version...)
		b = append(b, '"')
	}
	if f.version == "" {
		b = append(b, `,"epoch":"`...)
		b = append(b, f.epoch...)
		b = append(b, `","offset":`...)
		b = strconv.AppendUint(b, f.offset, 10)
	}
	switch k {
	case kindCurrent:
		return append(b, '}')
	case kindGapSnapshot:
		b = append(b, `,"gap":true`...)
	case kindDelta:
		b = append(b, `,"base":"`...)
		b = append(b, f.base...)
		b = append(b, `","data":`...)
		b = append(b, f.delta...)
		return append(b, '}')
	}
	b = append(b, `,"data":`...)
	b = append(b, f.payload...)
	return append(b, '}')
}
