// Package strictb64 decodes base64 that comes from outside so that every
// value has exactly one accepted spelling.
//
// encoding/base64 skips '\r' and '\n' anywhere in its input, even in
// Strict mode (its doc: "New line characters (\r and \n) are ignored"), so
// "Y\n2VsbC1h" and "Y2VsbC1h" decode alike. FuzzPinCookie found a signed pin
// cookie that still verified with a newline inside its cell field. A value
// we sign or compare must not have two spellings, so these decoders refuse
// any byte outside the encoding's alphabet before decoding, and decode with
// Strict (non-zero padding bits are refused too).
package strictb64

import (
	"encoding/base64"
	"errors"
)

// ErrAlphabet is returned for input holding a byte outside the alphabet.
var ErrAlphabet = errors.New("base64: byte outside the alphabet")

var (
	rawURL = base64.RawURLEncoding.Strict()
	std    = base64.StdEncoding.Strict()
)

// AppendRawURL appends the decoding of src, unpadded base64url (RFC 4648
// §5), to dst. It does not allocate when dst has room.
func AppendRawURL(dst, src []byte) ([]byte, error) {
	for _, c := range src {
		if !isURL(c) {
			return dst, ErrAlphabet
		}
	}
	return rawURL.AppendDecode(dst, src)
}

// AppendStd appends the decoding of src, padded standard base64 (RFC 4648
// §4), to dst. '=' is allowed only as the trailing padding the decoder
// checks.
func AppendStd(dst, src []byte) ([]byte, error) {
	for _, c := range src {
		if !isStd(c) && c != '=' {
			return dst, ErrAlphabet
		}
	}
	return std.AppendDecode(dst, src)
}

func isAlnum(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}

func isURL(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

func isStd(c byte) bool { return isAlnum(c) || c == '+' || c == '/' }
