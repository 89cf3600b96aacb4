package geo

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/paulmach/orb"
)

// Boundaries are stored as gzip over a varint stream: each coordinate is
// quantised to 1e-6 degree (about 0.1 m, below the data's own precision)
// and written as the difference from the previous one, which keeps the
// carried boundaries of a whole country to a few megabytes.
const (
	shapesMagic = "IOCSHAPES1\n"
	coordScale  = 1e6
	// maxShapeCount bounds what a corrupt file can make the reader allocate.
	maxShapeCount = 1 << 24
)

// Shape is the boundary of one unit.
type Shape struct {
	Code string
	Geom orb.MultiPolygon
}

// WriteShapes encodes shapes in the compact form ReadShapes reads.
func WriteShapes(w io.Writer, shapes []Shape) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(zw)
	var buf [binary.MaxVarintLen64]byte
	uv := func(v uint64) { bw.Write(buf[:binary.PutUvarint(buf[:], v)]) }
	sv := func(v int64) { bw.Write(buf[:binary.PutVarint(buf[:], v)]) }
	bw.WriteString(shapesMagic)
	uv(uint64(len(shapes)))
	var px, py int64
	for _, s := range shapes {
		uv(uint64(len(s.Code)))
		bw.WriteString(s.Code)
		uv(uint64(len(s.Geom)))
		for _, poly := range s.Geom {
			uv(uint64(len(poly)))
			for _, ring := range poly {
				uv(uint64(len(ring)))
				for _, p := range ring {
					x, y := int64(math.Round(p[0]*coordScale)), int64(math.Round(p[1]*coordScale))
					sv(x - px)
					sv(y - py)
					px, py = x, y
				}
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return zw.Close()
}

// ReadShapes decodes what WriteShapes wrote.
func ReadShapes(r io.Reader) ([]Shape, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("read shapes: %w", err)
	}
	br := bufio.NewReader(zr)
	magic := make([]byte, len(shapesMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != shapesMagic {
		return nil, errors.New("read shapes: not a shapes file")
	}
	var rerr error
	uv := func() int {
		if rerr != nil {
			return 0
		}
		v, err := binary.ReadUvarint(br)
		if err == nil && v > maxShapeCount {
			err = fmt.Errorf("count %d out of range", v)
		}
		rerr = err
		return int(v)
	}
	sv := func() int64 {
		if rerr != nil {
			return 0
		}
		v, err := binary.ReadVarint(br)
		rerr = err
		return v
	}
	n := uv()
	shapes := make([]Shape, 0, min(n, 1<<16))
	var px, py int64
	for i := 0; i < n && rerr == nil; i++ {
		code := make([]byte, uv())
		if rerr == nil {
			_, rerr = io.ReadFull(br, code)
		}
		np := uv()
		geom := make(orb.MultiPolygon, 0, min(np, 1<<10))
		for len(geom) < np && rerr == nil {
			nr := uv()
			poly := make(orb.Polygon, 0, min(nr, 1<<10))
			for j := 0; j < nr && rerr == nil; j++ {
				npt := uv()
				ring := make(orb.Ring, 0, min(npt, 1<<16))
				for k := 0; k < npt && rerr == nil; k++ {
					px += sv()
					py += sv()
					ring = append(ring, orb.Point{float64(px) / coordScale, float64(py) / coordScale})
				}
				poly = append(poly, ring)
			}
			geom = append(geom, poly)
		}
		shapes = append(shapes, Shape{Code: string(code), Geom: geom})
	}
	if rerr != nil {
		return nil, fmt.Errorf("read shapes: %w", rerr)
	}
	return shapes, nil
}
