package llm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// sseEvent is one Server-Sent Event: its type (empty for the default
// "message") and its data, the data lines joined with "\n".
type sseEvent struct {
	Event string
	Data  []byte
}

// errEventTooLarge: a streamed event passed llm.max_response_bytes.
var errEventTooLarge = errors.New("streamed event is larger than llm.max_response_bytes")

// sseReader reads a text/event-stream as the WHATWG spec describes it,
// bounding each event (a line included) to max bytes. Fields other than
// event and data (id, retry) and comments are skipped.
type sseReader struct {
	r   *bufio.Reader
	max int
	buf []byte // the current line
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 4096), max: max}
}

// line reads one line without its end (\n, \r\n or a lone \r). It
// returns io.EOF only when nothing was read.
func (s *sseReader) line() ([]byte, error) {
	s.buf = s.buf[:0]
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && len(s.buf) > 0 {
				return s.buf, nil
			}
			return nil, err
		}
		switch c {
		case '\n':
			return s.buf, nil
		case '\r':
			if n, err := s.r.ReadByte(); err == nil && n != '\n' {
				s.r.UnreadByte()
			}
			return s.buf, nil
		}
		if len(s.buf) >= s.max+len("data: ") {
			return nil, fmt.Errorf("%w (%d bytes)", errEventTooLarge, s.max)
		}
		s.buf = append(s.buf, c)
	}
}

// Next returns the next event with data, or io.EOF at the end of the
// stream. An event cut off by the end of the stream is still returned.
func (s *sseReader) Next() (sseEvent, error) {
	var ev sseEvent
	var data []byte
	hasData := false
	for {
		line, err := s.line()
		if errors.Is(err, io.EOF) {
			if hasData {
				ev.Data = data
				return ev, nil
			}
			return sseEvent{}, io.EOF
		}
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if hasData {
				ev.Data = data
				return ev, nil
			}
			ev = sseEvent{} // an event without data is not dispatched
			continue
		}
		if line[0] == ':' {
			continue // comment (keep-alive)
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "event":
			ev.Event = string(value)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...) // copies: line's buffer is reused
			hasData = true
			if len(data) > s.max {
				return sseEvent{}, fmt.Errorf("%w (%d bytes)", errEventTooLarge, s.max)
			}
		}
	}
}
