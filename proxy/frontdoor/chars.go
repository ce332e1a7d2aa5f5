package frontdoor

// Byte classes from RFC 9110 §5.6.2 (tchar) and §5.5 (field-vchar), built
// once into lookup tables because they sit on the per-byte hot path.
var (
	isTchar      [256]bool // token characters
	isFieldByte  [256]bool // field-vchar, SP, HTAB: what a field value may hold
	isTargetByte [256]bool // visible ASCII except '#': what a request-target may hold
	isHostByte   [256]bool // reg-name bytes we accept in Host, minus '%' handled apart
	hexVal       [256]int8 // value of a HEXDIG, or -1
)

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		isTchar[c] = alnum || indexByte("!#$%&'*+-.^_`|~", b)
		isFieldByte[c] = b == ' ' || b == '\t' || 0x21 <= b && b != 0x7f
		isTargetByte[c] = 0x21 <= b && b <= 0x7e && b != '#'
		isHostByte[c] = alnum || b == '-' || b == '.' || b == '_' || b == '~'
		switch {
		case '0' <= b && b <= '9':
			hexVal[c] = int8(b - '0')
		case 'a' <= b && b <= 'f':
			hexVal[c] = int8(b - 'a' + 10)
		case 'A' <= b && b <= 'F':
			hexVal[c] = int8(b - 'A' + 10)
		default:
			hexVal[c] = -1
		}
	}
}

func indexByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// isToken reports whether b is a non-empty RFC 9110 §5.6.2 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar[c] {
			return false
		}
	}
	return true
}

// lower folds an ASCII letter to lower case.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// eqFold reports whether b equals the lower-case ASCII string s, ignoring
// ASCII case. When dash is true an underscore in b also matches '-' in s, which
// is how some backends (CGI, PHP, nginx with underscores_in_headers) fold names.
func eqFold(b []byte, s string, dash bool) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := lower(b[i])
		if c != s[i] && !(dash && c == '_' && s[i] == '-') {
			return false
		}
	}
	return true
}
