package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// PROXY protocol (HAProxy's send-proxy and send-proxy-v2): a TCP load
// balancer in front of the proxy writes a header with the client's address
// before the client's first byte. Only connections from the addresses in
// Options.ProxyTrusted may, and must, send one; the session then takes its
// source address for the client's (logs, the loopback cleartext policy).
// github.com/pires/go-proxyproto parses the header; the bytes are read here,
// exactly as many as the header has, so that nothing the client sent after
// it sits in a buffer the session and the idle poller do not see.

// proxyHeaderTimeout bounds the wait for a trusted peer's header.
const proxyHeaderTimeout = 10 * time.Second

// maxProxyHeader bounds a header's size: v1's is at most 107 bytes, v2's
// 16 plus its addresses and TLVs, which balancers keep small.
const maxProxyHeader = 4096

// errUntrustedProxyHeader answers a PROXY header from an address that
// Options.ProxyTrusted does not list: the header is refused, never taken
// for the client's word.
var errUntrustedProxyHeader = newError(severityFatal, sqlstate.ProtocolViolation,
	"PROXY protocol header from an address that is not a trusted load balancer (proxy_protocol.trusted)")

// The first bytes of the two versions' headers.
var (
	proxyV1Start = []byte("PROXY ")
	proxyV2Start = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// isProxyHeaderStart reports whether the four bytes a startup packet's
// length would be read from begin a PROXY header instead.
func isProxyHeaderStart(b []byte) bool {
	return bytes.HasPrefix(proxyV1Start, b) || bytes.HasPrefix(proxyV2Start, b)
}

// trustedPeer reports whether addr is one of the trusted balancers.
func trustedPeer(trusted []netip.Prefix, addr net.Addr) bool {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// acceptProxyHeader reads the PROXY header of a connection from a trusted
// balancer and returns the connection as the client's. A missing or
// malformed header ends only this connection, with an error and a warning
// naming the peer; connections from other addresses are returned as they
// are (the startup packet's reader refuses a header from them).
func (s *Server) acceptProxyHeader(conn net.Conn) (net.Conn, bool) {
	if len(s.opts.ProxyTrusted) == 0 || !trustedPeer(s.opts.ProxyTrusted, conn.RemoteAddr()) {
		return conn, true
	}
	c, err := readProxyHeader(conn)
	if err != nil {
		s.log.Warn("connection from a trusted load balancer refused", "peer", conn.RemoteAddr().String(), "err", err)
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write(newError(severityFatal, sqlstate.ProtocolViolation, err.Error()).encode(nil))
		closeUnread(conn)
		return nil, false
	}
	return c, true
}

// readProxyHeader reads a trusted peer's PROXY header from conn and returns
// the connection as the client's: with the header's source address, or
// with the peer's own for a LOCAL header (the balancer's health check).
func readProxyHeader(conn net.Conn) (net.Conn, error) {
	_ = conn.SetReadDeadline(time.Now().Add(proxyHeaderTimeout))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	raw, err := readProxyHeaderBytes(conn)
	if err != nil {
		return nil, err
	}
	h, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(raw), len(raw)+16))
	if err != nil {
		return nil, fmt.Errorf("malformed PROXY protocol header: %w", err)
	}
	if h.Command.IsLocal() {
		return conn, nil
	}
	src, ok := h.SourceAddr.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("PROXY protocol header without a TCP source address (protocol 0x%02x)", byte(h.TransportProtocol))
	}
	return &proxiedConn{Conn: conn, remote: src}, nil
}

// readProxyHeaderBytes reads exactly one header, v1 or v2.
func readProxyHeaderBytes(r io.Reader) ([]byte, error) {
	buf := make([]byte, len(proxyV1Start), maxProxyHeader)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading the PROXY protocol header: %w", err)
	}
	switch {
	case bytes.Equal(buf, proxyV1Start):
		// v1: one text line up to CRLF.
		for len(buf) < 108 {
			var b [1]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil, fmt.Errorf("reading the PROXY protocol header: %w", err)
			}
			buf = append(buf, b[0])
			if bytes.HasSuffix(buf, []byte("\r\n")) {
				return buf, nil
			}
		}
		return nil, errors.New("malformed PROXY protocol header: a v1 line longer than 107 bytes")
	case bytes.Equal(buf, proxyV2Start[:len(buf)]):
		// v2: 16 bytes, the last two the length of what follows.
		buf = buf[:16]
		if _, err := io.ReadFull(r, buf[len(proxyV1Start):]); err != nil {
			return nil, fmt.Errorf("reading the PROXY protocol header: %w", err)
		}
		if !bytes.Equal(buf[:len(proxyV2Start)], proxyV2Start) {
			return nil, errors.New("malformed PROXY protocol header: no v2 signature")
		}
		n := int(binary.BigEndian.Uint16(buf[14:16]))
		if 16+n > maxProxyHeader {
			return nil, fmt.Errorf("malformed PROXY protocol header: %d bytes of addresses and TLVs", n)
		}
		buf = buf[:16+n]
		if _, err := io.ReadFull(r, buf[16:]); err != nil {
			return nil, fmt.Errorf("reading the PROXY protocol header: %w", err)
		}
		return buf, nil
	}
	return nil, errors.New("no PROXY protocol header from a trusted load balancer (proxy_protocol.trusted): it must send one (HAProxy: send-proxy-v2)")
}

// closeUnread closes a connection refused with bytes still unread, so that
// the error written before reaches the peer: closing a socket with unread
// input resets it, and the peer's pending error is lost. It ends the
// sending side, then discards input for up to a second.
func closeUnread(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(conn, 1<<16))
	}
	conn.Close()
}

// proxiedConn is a client connection whose address a PROXY header gave.
type proxiedConn struct {
	net.Conn
	remote net.Addr
}

// RemoteAddr is the client's address as the balancer reported it.
func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// SyscallConn is the socket's, for the idle poller: the header was read
// exactly, so the socket holds whatever the session has yet to read.
func (c *proxiedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("no socket under the connection")
	}
	return sc.SyscallConn()
}
