package bounces

// matcher is an Aho–Corasick automaton over a set of lower-case ASCII (or
// UTF-8) keywords, compiled to a dense DFA on byte classes. Scanning folds
// ASCII letters to lower case on the fly and treats every run of white space
// (space, tab, CR, LF) as one space, so "User  Unknown" and a keyword split
// over the lines of a multi-line answer still match "user unknown".
//
// A matcher is immutable once built and safe for concurrent use.
type matcher struct {
	class   [256]uint8 // byte -> byte class; 0 is "no keyword has this byte"
	nclass  int
	delta   []int32 // state*nclass + class -> next state
	outs    []int32 // flattened keyword ids per state (own and inherited)
	outOff  []int32 // state -> start in outs; outOff[s+1] is the end
	nwords  int
	words   []string
	isFinal []bool // state has at least one output
}

// asciiSpace marks the bytes scanning treats as white space.
var asciiSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true, '\v': true, '\f': true}

// continuationLen returns the length of a reply-code prefix at the start of
// s: three digits and '-' ("550-"), or three digits, '-' or ' ' and an
// enhanced code followed by white space or the end ("550-5.7.1 ",
// "450 4.2.1"); else 0.
func continuationLen(s string) int {
	if len(s) < 4 || !isDigit(s[1]) || !isDigit(s[2]) || (s[3] != '-' && s[3] != ' ') {
		return 0
	}
	i := 4
	if n := enhancedLen(s[i:]); n > 0 {
		i += n
	} else if s[3] == '-' {
		return 4 // "550-Mailbox ...": the marker alone
	} else {
		return 0 // "123 apples": a number, not a marker
	}
	if i < len(s) && !asciiSpace[s[i]] {
		return 0
	}
	if i < len(s) {
		i++
	}
	return i
}

// foldByte returns b lower-cased when it is an ASCII letter, and ' ' for
// ASCII white space.
func foldByte(b byte) byte {
	switch {
	case b >= 'A' && b <= 'Z':
		return b + 'a' - 'A'
	case b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f':
		return ' '
	}
	return b
}

// normalizeKeyword folds a keyword the way scanning folds the text: ASCII
// lower case, runs of white space collapsed to one space, trimmed.
func normalizeKeyword(s string) string {
	out := make([]byte, 0, len(s))
	space := true // drop leading space
	for i := 0; i < len(s); i++ {
		b := foldByte(s[i])
		if b == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		out = append(out, b)
	}
	for len(out) > 0 && out[len(out)-1] == ' ' {
		out = out[:len(out)-1]
	}
	return string(out)
}

// newMatcher builds the automaton for words, which must already be
// normalised (normalizeKeyword) and non-empty. Keyword i is reported as id i.
func newMatcher(words []string) *matcher {
	m := &matcher{nwords: len(words), words: words}
	// Byte classes: every distinct byte of the keywords gets one class.
	next := uint8(1)
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			b := w[i]
			if m.class[b] == 0 {
				m.class[b] = next
				next++
			}
		}
	}
	for b := 'A'; b <= 'Z'; b++ {
		m.class[b] = m.class[b+'a'-'A']
	}
	for _, b := range []byte{'\t', '\n', '\r', '\v', '\f'} {
		m.class[b] = m.class[' ']
	}
	m.nclass = int(next)

	// Trie.
	type node struct {
		next map[uint8]int32
		out  []int32
	}
	nodes := []node{{next: map[uint8]int32{}}}
	for id, w := range words {
		s := int32(0)
		for i := 0; i < len(w); i++ {
			c := m.class[w[i]]
			t, ok := nodes[s].next[c]
			if !ok {
				t = int32(len(nodes))
				nodes = append(nodes, node{next: map[uint8]int32{}})
				nodes[s].next[c] = t
			}
			s = t
		}
		nodes[s].out = append(nodes[s].out, int32(id))
	}

	// Breadth-first: failure links and the dense transition table.
	n := len(nodes)
	m.delta = make([]int32, n*m.nclass)
	fail := make([]int32, n)
	queue := make([]int32, 0, n)
	for c := 1; c < m.nclass; c++ {
		if t, ok := nodes[0].next[uint8(c)]; ok {
			m.delta[c] = t
			fail[t] = 0
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		nodes[s].out = append(nodes[s].out, nodes[fail[s]].out...)
		for c := 1; c < m.nclass; c++ {
			if t, ok := nodes[s].next[uint8(c)]; ok {
				fail[t] = m.delta[int(fail[s])*m.nclass+c]
				m.delta[int(s)*m.nclass+c] = t
				queue = append(queue, t)
			} else {
				m.delta[int(s)*m.nclass+c] = m.delta[int(fail[s])*m.nclass+c]
			}
		}
	}
	m.outOff = make([]int32, n+1)
	m.isFinal = make([]bool, n)
	for s := 0; s < n; s++ {
		m.outOff[s] = int32(len(m.outs))
		m.outs = append(m.outs, nodes[s].out...)
		m.isFinal[s] = len(nodes[s].out) > 0
	}
	m.outOff[n] = int32(len(m.outs))
	return m
}

// scan sets bit i of set for every keyword i found in text. set must hold at
// least (nwords+63)/64 words.
func (m *matcher) scan(text string, set []uint64) {
	if m.nwords == 0 {
		return
	}
	delta, cls, nc := m.delta, &m.class, m.nclass
	sp := cls[' ']
	s := int32(0)
	space := false
	for i := 0; i < len(text); i++ {
		b := text[i]
		if (space || i == 0) && b >= '0' && b <= '9' {
			// A continuation marker of a flattened multi-line answer
			// ("550-5.7.1 ", "450 4.2.1 ") inside the text: skip it so
			// that wording broken over lines still matches.
			if n := continuationLen(text[i:]); n > 0 {
				i += n - 1
				space = true
				continue
			}
		}
		var c uint8
		if asciiSpace[b] {
			if space {
				continue // a run of white space counts as one space
			}
			space, c = true, sp
		} else {
			space, c = false, cls[b]
		}
		s = delta[int(s)*nc+int(c)]
		if m.isFinal[s] {
			for _, id := range m.outs[m.outOff[s]:m.outOff[s+1]] {
				set[id>>6] |= 1 << (uint(id) & 63)
			}
		}
	}
}
